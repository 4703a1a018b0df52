// Collaborative editing over `edit:data:<id>` with the official phoenix.js client: Alice owns the form, Bob and Carol
// watch; Alice's drafts reach them; Carol's forged events are refused and change nothing; when Alice's socket goes,
// Bob is promoted holding Alice's draft and saves it (fenced); a save based on a row changed elsewhere merges per
// field, and only the fields both sides changed are a conflict, which `resolve` answers.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, disconnectAll } from "./client.mjs";
import { account, sleep, startWithUsers } from "./server.mjs";

const LEAVE_GRACE_MS = 300;
const EDIT_EVENTS = ["presence_state", "presence_diff", "role", "draft", "saved", "deleted"];

let setup;
let records;

before(async () => {
  setup = await startWithUsers([account("Alice"), account("Bob"), account("Carol")], {
    leaveGraceMs: LEAVE_GRACE_MS,
    demo: true,
  });
  const { token } = setup.accounts.Alice;
  ({ records } = await setup.server.apiOk("GET", "/api/entities/article/records", { token }));
  assert.ok(records.length >= 3, "the demo content has three article records");
});

after(async () => {
  disconnectAll();
  await setup?.close();
});

/** Connects `user` and joins `edit:data:<id>` with a tab id; returns the client, the channel and the join reply. */
async function openForm(user, recordId, tab) {
  const client = await new Client(setup.server, { token: user.token, label: user.name }).connect();
  const form = client.channel(`edit:data:${recordId}`, { tab_id: tab }, EDIT_EVENTS);
  const reply = await form.join();
  return { client, form, reply };
}

function getRecord(id, token) {
  return setup.server.apiOk("GET", `/api/entities/article/records/${id}`, { token });
}

/** Form params for a record: everything the API's record input takes. */
function paramsOf(record, changes = {}) {
  return { title: record.title, slug: record.slug, status: record.status, data: { ...record.data }, ...changes };
}

const SCENARIO = "editing: owner and spectators, drafts, refused forgeries, promotion with the draft, fenced saves";

test(SCENARIO, { timeout: 60_000 }, async () => {
  const { Alice, Bob, Carol } = setup.accounts;
  const record = records[records.length - 1];

  // Join order decides the baton: Alice, then Bob, then Carol.
  const alice = await openForm(Alice, record.id, "alice-tab-1");
  assert.equal(alice.reply.role, "owner", JSON.stringify(alice.reply));
  assert.equal(alice.reply.owner.user_id, Alice.userId);
  assert.equal(alice.reply.lock_version, record.lock_version);
  assert.equal(alice.reply.draft, null);

  const bob = await openForm(Bob, record.id, "bob-tab-1");
  assert.equal(bob.reply.role, "spectator", JSON.stringify(bob.reply));
  assert.equal(bob.reply.owner.user_id, Alice.userId);

  const carol = await openForm(Carol, record.id, "carol-tab-1");
  assert.equal(carol.reply.role, "spectator", JSON.stringify(carol.reply));
  assert.equal(carol.reply.owner.user_id, Alice.userId);
  assert.deepEqual(
    carol.reply.queue.map((entry) => entry.user_id),
    [Alice.userId, Bob.userId, Carol.userId],
    "the queue is in join order",
  );

  // Alice types: Bob and Carol receive her draft; Alice gets no echo.
  const aliceParams = paramsOf(record, {
    title: "Alice's unsaved title",
    data: { ...record.data, summary: "Typed by Alice, saved by Bob." },
  });
  const typed = await alice.form.push("draft", { params: aliceParams });
  assert.equal(typed.status, "ok", JSON.stringify(typed.response));
  const aliceVersion = typed.response.version;
  assert.equal(aliceVersion, 1);
  for (const spectator of [bob, carol]) {
    const draft = await spectator.form.next("draft");
    assert.deepEqual(draft.params, aliceParams, `${spectator.client.label} holds Alice's params`);
    assert.equal(draft.version, aliceVersion);
    assert.equal(draft.updated_by.user_id, Alice.userId);
  }

  // Carol forges a draft and a save: both refused with not_owner; nothing changes anywhere.
  const forgedDraft = await carol.form.push("draft", { params: paramsOf(record, { title: "Carol's forged draft" }) });
  assert.equal(forgedDraft.status, "error");
  assert.equal(forgedDraft.response.reason, "not_owner", JSON.stringify(forgedDraft.response));
  const forgedSave = await carol.form.push("save", { params: paramsOf(record, { title: "Carol's forged save" }) });
  assert.equal(forgedSave.status, "error");
  assert.equal(forgedSave.response.reason, "not_owner", JSON.stringify(forgedSave.response));
  const forgedDraftSave = await carol.form.push("save", {});
  assert.equal(forgedDraftSave.response.reason, "not_owner", "saving the session's draft is the owner's too");
  const untouched = await getRecord(record.id, Carol.token);
  assert.equal(untouched.title, record.title);
  assert.equal(untouched.lock_version, record.lock_version);
  await sleep(200);
  assert.deepEqual(bob.form.inbox.pending("draft"), [], "Carol's refused draft reached nobody");
  assert.deepEqual(alice.form.inbox.pending("draft"), [], "no draft echo to its author, none from Carol");
  assert.deepEqual(bob.form.inbox.pending("saved"), [], "nothing was saved");

  // Alice's socket goes without leaving: after the grace, Bob is promoted and told he holds Alice's draft.
  await alice.client.disconnect();
  const promoted = await bob.form.next("role", { where: (p) => p.role === "owner", timeout: LEAVE_GRACE_MS + 5_000 });
  assert.equal(promoted.reason, "promoted", JSON.stringify(promoted));
  assert.equal(promoted.owner.user_id, Bob.userId);
  assert.ok(promoted.draft, `the promotion carries the draft: ${JSON.stringify(promoted)}`);
  assert.equal(promoted.draft.version, aliceVersion, "the draft Bob holds is Alice's latest");
  assert.equal(promoted.draft.updated_by.user_id, Alice.userId, "and Bob is told who wrote it");
  const carolSees = await carol.form.next("role", { where: (p) => p.owner?.user_id === Bob.userId });
  assert.equal(carolSees.role, "spectator", JSON.stringify(carolSees));
  assert.equal(carolSees.reason, "owner_changed");

  // Carol is still refused under the new owner.
  const stillRefused = await carol.form.push("save", {});
  assert.equal(stillRefused.response.reason, "not_owner");

  // Bob saves the session's draft (Alice's params): ok with the new lock_version; the API shows Alice's title.
  const saved = await bob.form.push("save", {});
  assert.equal(saved.status, "ok", `Bob's save: ${JSON.stringify(saved.response)}`);
  assert.equal(saved.response.lock_version, record.lock_version + 1);
  const afterSave = await getRecord(record.id, Bob.token);
  assert.equal(afterSave.title, aliceParams.title);
  assert.equal(afterSave.data.summary, aliceParams.data.summary);
  assert.equal(afterSave.lock_version, saved.response.lock_version);
  const carolSaved = await carol.form.next("saved");
  assert.equal(carolSaved.lock_version, saved.response.lock_version);

  // A stale save: the row changes through the API, then Bob types a new draft and saves it: conflict, nothing lost.
  const outside = await setup.server.apiOk("PUT", `/api/entities/article/records/${record.id}`, {
    token: Carol.token,
    body: { ...paramsOf(afterSave, { title: "Changed through the API" }), lock_version: afterSave.lock_version },
  });
  assert.equal(outside.lock_version, afterSave.lock_version + 1);
  await bob.form.next("saved", { where: (p) => p.lock_version === outside.lock_version });
  const bobsDraft = paramsOf(afterSave, { title: "Bob's draft on the old row" });
  const bobTyped = await bob.form.push("draft", { params: bobsDraft });
  assert.equal(bobTyped.status, "ok", JSON.stringify(bobTyped.response));
  const staleSave = await bob.form.push("save", {});
  const afterStale = await getRecord(record.id, Bob.token);
  assert.equal(
    staleSave.status,
    "error",
    `a save of a draft typed on lock_version ${afterSave.lock_version} after the row moved to ` +
      `${outside.lock_version} must be refused; got ${staleSave.status} ${JSON.stringify(staleSave.response)}; ` +
      `the row's title is now ${JSON.stringify(afterStale.title)}\n${bob.client.transcript(12)}`,
  );
  assert.equal(staleSave.response.reason, "conflict", JSON.stringify(staleSave.response));
  assert.equal(staleSave.response.lock_version, outside.lock_version);
  assert.equal(afterStale.title, "Changed through the API");
});

const CONFLICT = "editing: a draft typed before an outside write is a conflict, resolved by naming the new version";

test(CONFLICT, { timeout: 30_000 }, async () => {
  const { Bob, Carol } = setup.accounts;
  const record = records[0];
  const bob = await openForm(Bob, record.id, "bob-tab-2");
  assert.equal(bob.reply.role, "owner", JSON.stringify(bob.reply));

  const typed = await bob.form.push("draft", { params: paramsOf(record, { title: "Bob's draft" }) });
  assert.equal(typed.status, "ok");
  const outside = await setup.server.apiOk("PUT", `/api/entities/article/records/${record.id}`, {
    token: Carol.token,
    body: { ...paramsOf(record, { title: "Carol through the API" }), lock_version: record.lock_version },
  });
  const save = await bob.form.push("save", {});
  assert.equal(save.status, "error", JSON.stringify(save.response));
  assert.equal(save.response.reason, "conflict");
  assert.equal(save.response.lock_version, outside.lock_version);
  assert.equal(save.response.current.title, "Carol through the API");
  const row = await getRecord(record.id, Bob.token);
  assert.equal(row.title, "Carol through the API", "the conflicting save changed nothing");
  assert.equal(row.lock_version, outside.lock_version);

  // Resolving it (editing.rs: `save {params?, lock_version?}`): Bob merges and saves naming the version he merged with.
  const merged = paramsOf(save.response.current, { title: "Bob's draft, merged with Carol's change" });
  const resolved = await bob.form.push("save", { params: merged, lock_version: save.response.lock_version });
  assert.equal(
    resolved.status,
    "ok",
    `a save naming the current lock_version resolves the conflict: ${JSON.stringify(resolved.response)}`,
  );
  assert.equal(resolved.response.lock_version, outside.lock_version + 1);
  assert.equal((await getRecord(record.id, Bob.token)).title, merged.title);
  await bob.client.disconnect();
});

const MERGE =
  "editing: a save over a moved row merges per field; a conflict offers only the shared fields and resolve answers it";

test(MERGE, { timeout: 30_000 }, async () => {
  const { Bob, Carol } = setup.accounts;
  const record = await getRecord(records[1].id, Bob.token);
  const bob = await openForm(Bob, record.id, "bob-tab-merge");
  assert.equal(bob.reply.role, "owner", JSON.stringify(bob.reply));
  const put = (changes) =>
    setup.server.apiOk("PUT", `/api/entities/article/records/${record.id}`, { token: Carol.token, body: changes });

  // Bob changes the title; Carol the summary: Bob's save keeps both and says the summary came from the row.
  assert.equal((await bob.form.push("draft", { params: paramsOf(record, { title: "Bob's title" }) })).status, "ok");
  const carolsRow = await put({
    ...paramsOf(record, { data: { ...record.data, summary: "Carol's summary" } }),
    lock_version: record.lock_version,
  });
  const saved = await bob.form.push("save", {});
  assert.equal(saved.status, "ok", JSON.stringify(saved.response));
  assert.deepEqual(saved.response, { lock_version: carolsRow.lock_version + 1, merged: ["data.summary"] });
  const both = await getRecord(record.id, Bob.token);
  assert.equal(both.title, "Bob's title");
  assert.equal(both.data.summary, "Carol's summary", "Carol's summary survived Bob's save");
  const pushed = await bob.form.next("saved", { where: (p) => p.lock_version === saved.response.lock_version });
  assert.deepEqual(pushed.merged, ["data.summary"]);

  // Both change the summary: only it is offered; Bob's choice, against that version, saves it.
  const mine = paramsOf(both, { data: { ...both.data, summary: "Bob's summary" } });
  assert.equal((await bob.form.push("draft", { params: mine })).status, "ok");
  const moved = await put({
    ...paramsOf(both, { data: { ...both.data, summary: "Carol again" } }),
    lock_version: both.lock_version,
  });
  const conflict = await bob.form.push("save", {});
  assert.equal(conflict.response.reason, "conflict", JSON.stringify(conflict.response));
  assert.equal(conflict.response.lock_version, moved.lock_version);
  assert.deepEqual(conflict.response.fields, {
    "data.summary": { base: "Carol's summary", mine: "Bob's summary", theirs: "Carol again" },
  });
  const answer = { resolve: { "data.summary": "mine" }, lock_version: moved.lock_version };
  const resolved = await bob.form.push("save", answer);
  assert.deepEqual(resolved.response, { lock_version: moved.lock_version + 1, merged: [] });
  assert.equal((await getRecord(record.id, Bob.token)).data.summary, "Bob's summary");
  await bob.client.disconnect();
});
