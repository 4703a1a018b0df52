// Content events: clients joined to `entities` and `entity_data:<entity-name>` receive `entity_*` and `data_*` pushes
// with the right ids for every write made through the JSON API (with fetch), and nothing for a refused write.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, disconnectAll } from "./client.mjs";
import { account, sleep, startWithUsers } from "./server.mjs";

const ADMIN = account("Admin", "admin");
const EDITOR = account("Editor");

const ENTITY_EVENTS = ["entity_created", "entity_updated", "entity_deleted"];
const DATA_EVENTS = ["data_created", "data_updated", "data_deleted"];

let setup;

before(async () => {
  setup = await startWithUsers([EDITOR], { admin: ADMIN, demo: true });
  setup.accounts.Admin = { ...ADMIN, ...(await setup.server.token(ADMIN.email, ADMIN.password)) };
});

after(async () => {
  disconnectAll();
  await setup?.close();
});

const NAME = "content events: entities and entity_data:<name> receive every API write with its ids";

test(NAME, { timeout: 60_000 }, async () => {
  const { server, accounts } = setup;
  const admin = accounts.Admin.token;
  const editor = accounts.Editor.token;
  const article = await server.apiOk("GET", "/api/entities/article", { token: editor });

  // A viewer of content: one socket, both channels.
  const client = await new Client(server, { token: editor, label: "watcher" }).connect();
  const entities = client.channel("entities", {}, ENTITY_EVENTS);
  const articles = client.channel("entity_data:article", {}, DATA_EVENTS);
  assert.deepEqual(await entities.join(), {});
  assert.deepEqual(await articles.join(), { entity_id: article.id }, "the join reply names the entity's id");

  // Records of `article`: create, update, a refused (stale) update, delete.
  const record = await server.apiOk("POST", "/api/entities/article/records", {
    token: editor,
    expected: 201,
    body: { title: "Interop record", data: { summary: "created by the interop suite", category: "news" } },
  });
  const created = await articles.next("data_created", { where: (p) => p.data_id === record.id });
  assert.equal(created.entity_id, article.id);

  const updated = await server.apiOk("PUT", `/api/entities/article/records/${record.id}`, {
    token: editor,
    body: { title: "Interop record, renamed", data: record.data, lock_version: record.lock_version },
  });
  assert.equal(updated.lock_version, record.lock_version + 1);
  const dataUpdated = await articles.next("data_updated", { where: (p) => p.data_id === record.id });
  assert.equal(dataUpdated.entity_id, article.id);

  const stale = await server.api("PUT", `/api/entities/article/records/${record.id}`, {
    token: editor,
    body: { title: "Stale write", data: record.data, lock_version: record.lock_version },
  });
  assert.equal(stale.status, 409, `a stale lock_version is refused: ${JSON.stringify(stale.body)}`);

  await server.apiOk("DELETE", `/api/entities/article/records/${record.id}?lock_version=${updated.lock_version}`, {
    token: editor,
    expected: 204,
  });
  const deleted = await articles.next("data_deleted", { where: (p) => p.data_id === record.id });
  assert.equal(deleted.entity_id, article.id);
  assert.deepEqual(
    articles.inbox.pending("data_updated").map((item) => item.payload),
    [],
    "the refused (409) update broadcast nothing",
  );

  // An entity: create (admin), a record in it on its own entity_data channel, update, delete.
  const fields = [{ type: "text", key: "note", label: "Note", required: true }];
  const entity = await server.apiOk("POST", "/api/entities", {
    token: admin,
    expected: 201,
    body: {
      name: "interop_note",
      display_name: "Interop note",
      display_name_plural: "Interop notes",
      fields_definition: fields,
    },
  });
  const entityCreated = await entities.next("entity_created", { where: (p) => p.entity_id === entity.id });
  assert.equal(entityCreated.entity_id, entity.id);

  const notes = client.channel("entity_data:interop_note", {}, DATA_EVENTS);
  assert.deepEqual(await notes.join(), { entity_id: entity.id });
  const note = await server.apiOk("POST", "/api/entities/interop_note/records", {
    token: editor,
    expected: 201,
    body: { title: "First note", data: { note: "hello" } },
  });
  const noteCreated = await notes.next("data_created", { where: (p) => p.data_id === note.id });
  assert.equal(noteCreated.entity_id, entity.id);

  const entityAfterUpdate = await server.apiOk("PUT", "/api/entities/interop_note", {
    token: admin,
    body: {
      name: "interop_note",
      display_name: "Interop note (renamed)",
      display_name_plural: "Interop notes",
      fields_definition: fields,
      lock_version: entity.lock_version,
    },
  });
  assert.equal(entityAfterUpdate.lock_version, entity.lock_version + 1);
  await entities.next("entity_updated", { where: (p) => p.entity_id === entity.id });

  await server.apiOk("DELETE", `/api/entities/interop_note?lock_version=${entityAfterUpdate.lock_version}`, {
    token: admin,
    expected: 204,
  });
  await entities.next("entity_deleted", { where: (p) => p.entity_id === entity.id });

  // Nothing crossed over: the article channel never heard of the note, and nothing else is left unexplained.
  await sleep(200);
  for (const event of DATA_EVENTS) {
    assert.deepEqual(
      articles.inbox.pending(event).map((item) => item.payload),
      [],
      `entity_data:article got an unexpected ${event}`,
    );
  }
  for (const event of ENTITY_EVENTS) {
    assert.deepEqual(entities.inbox.pending(event).map((item) => item.payload), [], `unexpected ${event}`);
  }

  // The channels only send: a client event is refused with an error reply.
  const refused = await entities.push("entity_created", { entity_id: 1 });
  assert.equal(refused.status, "error");
});
