// Unit tests of the browser client (crates/livebaton-web/assets/livebaton.js) in headless Chromium.
//
// Two parts: the DOM morph, flash and event helpers on pages built with setContent (no #lb-root, so no socket), and
// the socket protocol against a small fake server (Node's http + ws) that serves a page and speaks Phoenix V2 frames.
//
// Run: cd tests/browser && node --test client.test.mjs   (needs /usr/bin/chromium: scripts/ensure-chromium)
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { launchBrowser } from './lib/chromium.mjs';

const CLIENT_PATH = fileURLToPath(new URL('../../crates/livebaton-web/assets/livebaton.js', import.meta.url));
const TEST_TIMEOUT = 20_000;
const WAIT = 5_000; // the longest any single expectation waits

let browser;
let context;
let page;
let pageErrors;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

beforeEach(async () => {
  context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error));
});

afterEach(async () => {
  await context?.close();
  assert.deepEqual(pageErrors.map(String), [], 'the page threw');
});

/** A page with `body` and the client loaded (no #lb-root unless `body` has one: then it would connect). */
async function staticPage(body) {
  await page.setContent(`<!doctype html><html><head><title>t</title></head><body>${body}</body></html>`);
  await page.addScriptTag({ path: CLIENT_PATH });
  await page.waitForFunction(() => window.Livebaton !== undefined);
}

/** Livebaton.morph(#id, html) in the page. */
function morph(id, html) {
  return page.evaluate(([id, html]) => {
    window.Livebaton.morph(document.getElementById(id), html);
  }, [id, html]);
}

/** Tags an element with a JS property, to tell later whether a patch kept the same node. */
function mark(selector, value) {
  return page.evaluate(([selector, value]) => {
    document.querySelector(selector).__mark = value;
  }, [selector, value]);
}

function markOf(selector) {
  return page.evaluate((selector) => document.querySelector(selector)?.__mark ?? null, selector);
}

describe('morph', { timeout: TEST_TIMEOUT }, () => {
  test('a page without #lb-root never opens a socket', async () => {
    await page.setContent('<!doctype html><body><p>static</p></body>');
    await page.evaluate(() => {
      window.__sockets = 0;
      window.WebSocket = function () {
        window.__sockets += 1;
      };
    });
    await page.addScriptTag({ path: CLIENT_PATH });
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__sockets), 0);
    assert.equal(await page.evaluate(() => typeof window.Livebaton.morph), 'function');
    assert.equal(await page.evaluate(() => document.body.dataset.lbState ?? null), null);
  });

  test('a focused input keeps its value, caret and selection; its other attributes update', async () => {
    await staticPage('<div id="r" data-lb-region><input id="a" class="old" value="one"></div>');
    await mark('#a', 'same');
    await page.fill('#a', 'hello world');
    await page.evaluate(() => document.getElementById('a').setSelectionRange(2, 7, 'forward'));
    await morph('r', '<div id="r" data-lb-region><input id="a" class="new" value="server" maxlength="40"></div>');
    const state = await page.evaluate(() => {
      const input = document.getElementById('a');
      return {
        value: input.value,
        start: input.selectionStart,
        end: input.selectionEnd,
        className: input.className,
        maxLength: input.maxLength,
        focused: document.activeElement === input,
      };
    });
    assert.deepEqual(state, { value: 'hello world', start: 2, end: 7, className: 'new', maxLength: 40, focused: true });
    assert.equal(await markOf('#a'), 'same');
  });

  test('a focused input the user has not typed in yet keeps its value too', async () => {
    // An untouched input follows its value attribute: the patch must not change that attribute under the user.
    await staticPage('<div id="r"><input id="a" value="one"></div>');
    await page.focus('#a');
    await page.evaluate(() => document.getElementById('a').setSelectionRange(1, 1));
    await morph('r', '<div id="r"><input id="a" value="two!"></div>');
    assert.deepEqual(
      await page.evaluate(() => [document.getElementById('a').value, document.getElementById('a').selectionStart]),
      ['one', 1]
    );
  });

  test('a focused textarea and select keep their value', async () => {
    await staticPage(
      '<div id="r"><textarea id="t">old</textarea><select id="s"><option>a</option><option>b</option></select></div>'
    );
    const patch = (text) =>
      morph('r', `<div id="r"><textarea id="t">${text}</textarea><select id="s"><option selected>a</option><option>b</option></select></div>`);
    await page.fill('#t', 'typed');
    await page.selectOption('#s', 'b');
    await page.focus('#s'); // selectOption does not focus
    await patch('server one');
    assert.deepEqual(
      await page.evaluate(() => [document.getElementById('s').value, document.getElementById('t').value]),
      ['b', 'server one']
    );
    await page.fill('#t', 'typed again');
    await page.evaluate(() => document.getElementById('t').setSelectionRange(1, 4));
    await patch('server two');
    assert.deepEqual(
      await page.evaluate(() => {
        const t = document.getElementById('t');
        return [t.value, t.selectionStart, t.selectionEnd, document.getElementById('s').value];
      }),
      ['typed again', 1, 4, 'a']
    );
  });

  test('a focused input the server disables is disabled (and shows the server value)', async () => {
    await staticPage('<form id="r"><input id="a" name="a" value="one"></form>');
    await page.fill('#a', 'typing');
    await morph('r', '<form id="r"><input id="a" name="a" value="theirs" disabled></form>');
    const state = await page.evaluate(() => {
      const input = document.getElementById('a');
      return { disabled: input.disabled, matches: input.matches(':disabled'), value: input.value };
    });
    assert.deepEqual(state, { disabled: true, matches: true, value: 'theirs' });
    await page.keyboard.type('xyz');
    assert.equal(await page.evaluate(() => document.getElementById('a').value), 'theirs', 'a disabled input took keys');
  });

  test('controls without focus take the new values (input, textarea, select, checkbox, radio)', async () => {
    await staticPage(`
      <form id="f">
        <input id="i" value="a">
        <textarea id="t">a</textarea>
        <select id="s"><option value="x" selected>x</option><option value="y">y</option><option value="z">z</option></select>
        <select id="m" multiple><option value="1">1</option><option value="2">2</option></select>
        <input id="c" type="checkbox">
        <input id="r1" type="radio" name="g" value="1" checked><input id="r2" type="radio" name="g" value="2">
        <button id="elsewhere" type="button">x</button>
      </form>`);
    // The user changes every control (so their values are "dirty" and no longer follow attributes), then leaves.
    await page.fill('#i', 'typed');
    await page.fill('#t', 'typed');
    await page.selectOption('#s', 'y');
    await page.selectOption('#m', ['1']);
    await page.check('#c');
    await page.check('#r2');
    await page.focus('#elsewhere');
    await morph('f', `
      <form id="f">
        <input id="i" value="server">
        <textarea id="t">server text</textarea>
        <select id="s"><option value="x">x</option><option value="y">y</option><option value="z" selected>z</option></select>
        <select id="m" multiple><option value="1">1</option><option value="2" selected>2</option></select>
        <input id="c" type="checkbox">
        <input id="r1" type="radio" name="g" value="1" checked><input id="r2" type="radio" name="g" value="2">
        <button id="elsewhere" type="button">x</button>
      </form>`);
    const values = await page.evaluate(() => ({
      input: document.getElementById('i').value,
      textarea: document.getElementById('t').value,
      select: document.getElementById('s').value,
      multiple: Array.from(document.getElementById('m').selectedOptions, (option) => option.value),
      checkbox: document.getElementById('c').checked,
      r1: document.getElementById('r1').checked,
      r2: document.getElementById('r2').checked,
    }));
    assert.deepEqual(values, {
      input: 'server',
      textarea: 'server text',
      select: 'z',
      multiple: ['2'],
      checkbox: false,
      r1: true,
      r2: false,
    });
    // And the other way: the server checks what the user had unchecked.
    await page.uncheck('#c');
    await page.focus('#elsewhere');
    await morph('f', '<form id="f"><input id="c" type="checkbox" checked></form>');
    assert.equal(await page.evaluate(() => document.getElementById('c').checked), true);
  });

  test('keyed children are reordered without recreating them; un-keyed ones are reused in order', async () => {
    await staticPage(`
      <ul id="list"><li id="a">A</li><li id="b">B</li><li id="c">C <input id="in"></li><li>x1</li><li>x2</li></ul>`);
    for (const id of ['a', 'b', 'c']) await mark(`#${id}`, id);
    await page.evaluate(() => {
      const loose = document.querySelectorAll('#list > li:not([id])');
      loose[0].__mark = 'x1';
      loose[1].__mark = 'x2';
    });
    await page.fill('#in', 'kept');
    await morph('list', `
      <ul id="list"><li>y1</li><li id="c">C <input id="in"></li><li id="d">D</li><li id="a">A!</li><li id="b">B</li></ul>`);
    const after = await page.evaluate(() =>
      Array.from(document.getElementById('list').children, (li) => [li.id, li.textContent.trim(), li.__mark ?? null])
    );
    assert.deepEqual(after, [
      ['', 'y1', 'x1'],
      ['c', 'C', 'c'],
      ['d', 'D', null],
      ['a', 'A!', 'a'],
      ['b', 'B', 'b'],
    ]);
    // The input moved with its item and is the same node: it kept its value and focus.
    assert.deepEqual(
      await page.evaluate(() => [document.getElementById('in').value, document.activeElement.id]),
      ['kept', 'in']
    );
  });

  test('without Element.moveBefore, a moved focused input gets its focus and caret back', async () => {
    await staticPage('<div id="r"><p id="a">a</p><p id="b"><input id="in" value="abcdef"></p></div>');
    await page.evaluate(() => {
      delete Element.prototype.moveBefore; // as in browsers without it: insertBefore blurs what it moves
      const input = document.getElementById('in');
      input.focus();
      input.setSelectionRange(2, 4);
    });
    await mark('#in', 'same');
    await morph('r', '<div id="r"><p id="b"><input id="in" value="abcdef"></p><p id="a">a</p></div>');
    assert.deepEqual(
      await page.evaluate(() => {
        const input = document.getElementById('in');
        return [document.getElementById('r').firstElementChild.id, document.activeElement === input, input.selectionStart, input.selectionEnd];
      }),
      ['b', true, 2, 4]
    );
    assert.equal(await markOf('#in'), 'same');
  });

  test('text nodes are updated in place and a changed tag replaces the element', async () => {
    await staticPage('<p id="p">old <b>bold</b> tail<!--c1--></p>');
    await page.evaluate(() => {
      window.__text = document.getElementById('p').firstChild;
      window.__bold = document.querySelector('#p b');
    });
    await morph('p', '<p id="p">new <i>it</i> end<!--c2--></p>');
    const state = await page.evaluate(() => ({
      html: document.getElementById('p').innerHTML,
      sameText: document.getElementById('p').firstChild === window.__text,
      boldGone: !window.__bold.isConnected,
    }));
    assert.deepEqual(state, { html: 'new <i>it</i> end<!--c2-->', sameText: true, boldGone: true });
  });

  test('attributes are added, changed and removed', async () => {
    await staticPage('<div id="r" class="a" title="t" data-x="1" hidden aria-label="old"><span id="s" lang="en">s</span></div>');
    await mark('#r', 'r');
    await morph('r', '<div id="r" class="b" aria-label="new" data-y="2"><span id="s">s</span></div>');
    const state = await page.evaluate(() => {
      const r = document.getElementById('r');
      return {
        attributes: Array.from(r.attributes, (a) => `${a.name}=${a.value}`).sort(),
        span: document.getElementById('s').hasAttribute('lang'),
      };
    });
    assert.deepEqual(state, { attributes: ['aria-label=new', 'class=b', 'data-y=2', 'id=r'], span: false });
    assert.equal(await markOf('#r'), 'r');
  });

  test('data-lb-force sets a focused input value and keeps the caret, clamped', async () => {
    await staticPage('<div id="r"><input id="a" value=""><input id="b" value=""></div>');
    await page.fill('#a', 'hello world');
    await page.evaluate(() => document.getElementById('a').setSelectionRange(3, 3));
    await morph('r', '<div id="r"><input id="a" value="HELLO WORLD" data-lb-force><input id="b" value=""></div>');
    assert.deepEqual(
      await page.evaluate(() => {
        const a = document.getElementById('a');
        return [a.value, a.selectionStart, a.selectionEnd, document.activeElement === a];
      }),
      ['HELLO WORLD', 3, 3, true]
    );
    await page.evaluate(() => document.getElementById('a').setSelectionRange(8, 10));
    await morph('r', '<div id="r"><input id="a" value="short" data-lb-force><input id="b" value=""></div>');
    assert.deepEqual(
      await page.evaluate(() => {
        const a = document.getElementById('a');
        return [a.value, a.selectionStart, a.selectionEnd];
      }),
      ['short', 5, 5]
    );
  });

  test('scripts and inline handlers in patched HTML never run', async () => {
    await staticPage('<div id="r"><script id="s" type="text/plain"></script><p>x</p></div>');
    await morph(
      'r',
      `<div id="r">
        <script id="s">window.__pwned = 'keyed script'</script>
        <script>window.__pwned = 'script'</script>
        <img src="x-does-not-exist.png" onerror="window.__pwned = 'img onerror'">
        <svg><script>window.__pwned = 'svg script'</script><image href="y.png" onerror="window.__pwned = 'svg onerror'"></image></svg>
        <iframe srcdoc="<script>parent.__pwned = 'srcdoc'</script>"></iframe>
        <iframe src="javascript:parent.__pwned = 'iframe src'"></iframe>
        <a id="js" href=" JaVa&#x09;script:window.__pwned = 'link'">link</a>
        <div onclick="window.__pwned = 'click'" id="clickme">click</div>
      </div>`
    );
    // And through a second patch of existing nodes (attribute sync rather than fresh copies).
    await morph('r', `<div id="r"><p onmouseover="window.__pwned = 'synced'" id="p">x</p>
      <img id="i" src="z.png" onerror="window.__pwned = 'synced img'"></div>`);
    await page.click('#p');
    await page.waitForTimeout(300); // let the broken images report their errors
    await morph('r', '<div id="r"><a id="js" href="javascript:window.__pwned = 1">l</a><b id="clickme" onclick="window.__pwned=1">c</b></div>');
    await page.click('#js');
    await page.click('#clickme');
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => window.__pwned ?? null), null);
    assert.equal(await page.evaluate(() => document.getElementById('js').hasAttribute('href')), false);
  });

  test('flash messages are text, replace every older one, and can be dismissed', async () => {
    await staticPage(`
      <div id="lb-flash" class="lb-flash">
        <div class="flash flash-info" role="status">Saved <button type="button" class="flash-close" aria-label="Dismiss">×</button></div>
        <div class="flash flash-error" role="alert">Server error without a button</div>
      </div>`);
    const message = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"';
    await page.evaluate((message) => window.Livebaton.showFlash({ error: message }), message);
    await page.waitForTimeout(200);
    const flashes = () =>
      page.evaluate(() =>
        Array.from(document.querySelectorAll('#lb-flash .flash'), (flash) => ({
          kind: flash.className,
          text: flash.firstChild.nodeValue,
          role: flash.getAttribute('role'),
          elements: Array.from(flash.querySelectorAll('*'), (element) => element.localName),
          button: flash.querySelector('button.flash-close')?.getAttribute('aria-label'),
        }))
      );
    // The older "Saved" and error are gone: what is shown is about the last thing that happened.
    assert.deepEqual(await flashes(), [
      { kind: 'flash flash-error', text: `${message} `, role: 'alert', elements: ['button'], button: 'Dismiss' },
    ]);
    assert.equal(await page.evaluate(() => window.__pwned ?? null), null);
    await page.evaluate(() => window.Livebaton.showFlash({ info: 'Second' }));
    assert.deepEqual((await flashes()).map((flash) => [flash.kind, flash.role]), [['flash flash-info', 'status']]);
    // Several kinds of one update are shown together; an empty message changes nothing.
    await page.evaluate(() => window.Livebaton.showFlash({ info: 'Third', error: 'Fourth' }));
    await page.evaluate(() => window.Livebaton.showFlash({ info: '' }));
    assert.deepEqual((await flashes()).map((flash) => flash.text), ['Third ', 'Fourth ']);
    await page.click('#lb-flash .flash-info .flash-close');
    await page.click('#lb-flash .flash-error .flash-close');
    assert.equal(await page.evaluate(() => document.querySelectorAll('#lb-flash .flash').length), 0);
  });

  test('server-rendered flashes are dismissable, with or without their own button', async () => {
    await staticPage(`
      <div id="lb-flash"><div class="flash flash-info" role="status">Hi <button type="button" class="flash-close" aria-label="Dismiss">×</button></div>
      <div class="flash flash-error" role="alert">Bare</div></div>`);
    await page.click('.flash-info .flash-close');
    await page.click('.flash-error .flash-close');
    assert.equal(await page.evaluate(() => document.querySelectorAll('#lb-flash .flash').length), 0);
  });

  test('applyDiff applies regions, title and flash', async () => {
    await staticPage('<div id="lb-flash"></div><div id="lb-root"><div id="one" data-lb-region>1</div><div id="x">out</div></div>');
    await page.evaluate(() =>
      window.Livebaton.applyDiff({
        regions: { one: '<div id="one" data-lb-region>uno <span id="n" data-lb-region>nested</span></div>' },
        title: 'New title',
        flash: { info: 'Done' },
      })
    );
    assert.deepEqual(
      await page.evaluate(() => [
        document.getElementById('one').textContent,
        document.title,
        document.querySelector('#lb-flash .flash-info').firstChild.nodeValue,
      ]),
      ['uno nested', 'New title', 'Done ']
    );
  });
});

// -------------------------------------------------------------------------------------------------------------------
// The socket protocol against a fake server
// -------------------------------------------------------------------------------------------------------------------

/** Resolves with the first item of `list` (from `from` on) matching `predicate`, waiting for pushes up to `ms`. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.taken = new Set();
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const waiter of this.waiters) waiter();
  }

  /** The next not yet taken item matching `predicate`; it is taken. */
  take(predicate = () => true, ms = WAIT, what = this.name) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const index = this.items.findIndex((item, at) => !this.taken.has(at) && predicate(item));
        if (index === -1) return false;
        this.taken.add(index);
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(this.items[index]);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      if (!check()) this.waiters.add(check);
    });
  }

  /** Whether an item matching `predicate` arrives (taken or not) within `ms`. */
  async seen(predicate, ms) {
    try {
      await this.take(predicate, ms);
      return true;
    } catch {
      return false;
    }
  }
}

/** One WebSocket connection as the fake server sees it. */
class Connection {
  constructor(ws, request, log) {
    this.ws = ws;
    this.url = new URL(request.url, 'http://fake');
    this.frames = new Inbox('a frame');
    this.heartbeats = [];
    this.answerHeartbeats = true;
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame[2] === 'phoenix' && frame[3] === 'heartbeat') {
        this.heartbeats.push(frame);
        if (this.answerHeartbeats) this.send([null, frame[1], 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
        return;
      }
      log.push(`frame ${frame[3]}`);
      this.frames.push(frame);
    });
  }

  frame(event, ms = WAIT) {
    return this.frames.take((frame) => frame[3] === event, ms, `a ${event} frame`);
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  reply(frame, status, response) {
    this.send([frame[0], frame[1], frame[2], 'phx_reply', { status, response }]);
  }

  /** Waits for the join and answers it ok with `response`; returns the join frame. */
  async acceptJoin(response) {
    const join = await this.frame('phx_join');
    this.reply(join, 'ok', response);
    return join;
  }
}

/** Serves test pages, the client, and `/live/websocket` on 127.0.0.1 (a free port). */
async function startFakeServer() {
  const pages = new Map();
  const connections = new Inbox('a socket connection');
  const log = [];
  const sockets = new Set();
  const http = createServer((request, response) => {
    const path = new URL(request.url, 'http://fake').pathname;
    log.push(`GET ${path}`);
    if (path === '/assets/livebaton.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(readFileSync(CLIENT_PATH));
    } else if (pages.has(path)) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(pages.get(path));
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found');
    }
  });
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (request, socket, head) => {
    if (new URL(request.url, 'http://fake').pathname !== '/live/websocket') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => connections.push(new Connection(ws, request, log)));
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${http.address().port}`;
  return {
    base,
    pages,
    connections,
    log,
    nextConnection: (ms = WAIT) => connections.take(() => true, ms),
    /** Forgets earlier connections (a failed test may leave some untaken) and drops their sockets. */
    reset() {
      connections.items.forEach((connection, at) => {
        connections.taken.add(at);
        connection.ws.terminate();
      });
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** A live page as the server renders it. */
function livePage(view, body, { title = 'Live', flash = '', heartbeatMs = 3000 } = {}) {
  const heartbeat = heartbeatMs ? `<meta name="lb-heartbeat-ms" content="${heartbeatMs}">` : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<meta name="lb-connect" content="_csrf_token=abc123&amp;extra=a%20b">${heartbeat}</head>
<body data-lb-state="static">
<div id="lb-status" class="lb-status" role="status" hidden></div>
<div id="lb-flash" class="lb-flash">${flash}</div>
<div id="lb-root" data-lb-view="${view}" data-lb-token="SIGNED.TOKEN">${body}</div>
<script src="/assets/livebaton.js" defer></script>
</body></html>`;
}

const MAIN = '<div id="main" data-lb-region>Static render</div>';
const FORM = `<form id="edit" data-lb-region phx-change="validate" phx-submit="save">
  <input id="title" name="title" value="">
  <input id="other" name="other" value="a b&amp;c">
  <textarea id="body" name="body">x</textarea>
  <button id="save" type="submit">Save</button>
</form>`;

/** FORM as the server would render it with `title` set. */
function formWith(title, { disabled = false } = {}) {
  return FORM.replace('<input id="title" name="title" value="">', `<input id="title" name="title" value="${title}"${disabled ? ' disabled' : ''}>`);
}

const state = () => page.evaluate(() => document.body.dataset.lbState);

// Longer than the other suites: two of its tests wait out heartbeat intervals (3 s, and 4 s of the default 30 s).
describe('socket protocol', { timeout: 2 * TEST_TIMEOUT }, () => {
  let server;

  before(async () => {
    server = await startFakeServer();
    server.pages.set('/page', livePage('record_edit', `${MAIN}${FORM}
      <p><a id="next" href="/next">next</a> <a id="native" href="/next" data-lb-native>native</a>
      <button id="inc" type="button" phx-click="inc" phx-value-id="7" phx-value-kind="x">+</button></p>`));
    server.pages.set('/next', '<!doctype html><title>Next</title><p id="arrived">next page</p>');
    server.pages.set('/other', livePage('other_view', MAIN));
    server.pages.set('/default-heartbeat', livePage('other_view', MAIN, { heartbeatMs: 0 }));
  });

  after(async () => {
    await server?.close();
  });

  beforeEach(() => {
    server.reset();
  });

  test('connects with vsn 2.0.0 and the lb-connect params, joins, and keeps the tab id across a reload', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    assert.equal(connection.url.pathname, '/live/websocket');
    assert.equal(connection.url.searchParams.get('vsn'), '2.0.0');
    assert.equal(connection.url.searchParams.get('_csrf_token'), 'abc123');
    assert.equal(connection.url.searchParams.get('extra'), 'a b');
    const join = await connection.frame('phx_join');
    const [joinRef, ref, topic, , payload] = join;
    assert.equal(typeof joinRef, 'string');
    assert.equal(joinRef, ref);
    assert.equal(topic, 'lv:record_edit');
    assert.equal(payload.token, 'SIGNED.TOKEN');
    assert.match(payload.tab_id, /^[0-9a-f]{32}$/);
    assert.equal(await state(), 'connecting');

    connection.reply(join, 'ok', {
      rendered: { regions: { main: '<div id="main" data-lb-region>Joined <b>live</b></div>' } },
      title: 'Joined title',
      flash: { info: 'Welcome' },
    });
    await page.waitForSelector('body[data-lb-state=joined]');
    assert.equal(await page.textContent('#main'), 'Joined live');
    assert.equal(await page.title(), 'Joined title');
    assert.equal(await page.evaluate(() => document.querySelector('#lb-flash .flash-info').firstChild.nodeValue), 'Welcome ');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('lb-tab-id')), payload.tab_id);
    assert.equal(await page.isHidden('#lb-status'), true);

    await page.reload();
    const again = await server.nextConnection();
    const rejoin = await again.acceptJoin({ rendered: { regions: {} } });
    assert.equal(rejoin[4].tab_id, payload.tab_id, 'a reload keeps the tab id');
    await page.waitForSelector('body[data-lb-state=joined]');

    // Another tab (a fresh context here) gets its own id.
    const otherPage = await (await browser.newContext()).newPage();
    try {
      await otherPage.goto(`${server.base}/other`);
      const third = await server.nextConnection();
      const otherJoin = await third.frame('phx_join');
      assert.equal(otherJoin[2], 'lv:other_view');
      assert.notEqual(otherJoin[4].tab_id, payload.tab_id);
    } finally {
      await otherPage.context().close();
    }
  });

  test('sends a debounced change with the URL-encoded form and _target; unacknowledged edits are kept', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');

    await page.click('#title');
    await page.keyboard.type('héllo', { delay: 30 });
    const typed = Date.now();
    const change = await connection.frame('event');
    const waited = Date.now() - typed;
    const [changeJoinRef, changeRef, topic, , payload] = change;
    assert.equal(changeJoinRef, join[0]);
    assert.equal(topic, 'lv:record_edit');
    assert.notEqual(changeRef, join[1]);
    assert.deepEqual(payload, {
      type: 'change',
      event: 'validate',
      value: 'title=h%C3%A9llo&other=a+b%26c&body=x&_target=title',
    });
    assert.ok(waited >= 150, `the change came ${waited} ms after the last key: not debounced`);
    // One change for the whole burst of keys.
    assert.equal(await connection.frames.seen((frame) => frame[3] === 'event', 500), false, 'more than one change was sent');

    // Not acknowledged yet: a push carrying the old value must not undo the user's typing, even after a blur.
    await page.focus('#body');
    connection.send([join[0], null, topic, 'diff', { regions: { edit: formWith('stale') } }]);
    await page.waitForTimeout(100);
    assert.equal(await page.inputValue('#title'), 'héllo');

    // The reply acknowledges it: from now on the server's value shows.
    connection.reply(change, 'ok', { regions: { edit: formWith('HÉLLO') } });
    await page.waitForFunction(() => document.getElementById('title').value === 'HÉLLO');

    // A pushed diff applies regions and title.
    connection.send([join[0], null, topic, 'diff', { regions: { main: '<div id="main" data-lb-region>pushed</div>' }, title: 'Pushed' }]);
    await page.waitForFunction(() => document.getElementById('main').textContent === 'pushed');
    assert.equal(await page.title(), 'Pushed');
  });

  test('clicks send phx-value-*; a submit flushes the pending change, locks the form, then applies the reply', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');

    await page.click('#inc');
    const click = await connection.frame('event');
    assert.deepEqual(click[4], { type: 'click', event: 'inc', value: { id: '7', kind: 'x' } });
    connection.reply(click, 'ok', { regions: { main: '<div id="main" data-lb-region>clicked</div>' } });
    await page.waitForFunction(() => document.getElementById('main').textContent === 'clicked');

    await page.fill('#title', 'draft');
    // Submit at once, inside the debounce window and without a `change` event (the title keeps focus).
    await page.evaluate(() => document.getElementById('edit').requestSubmit());
    const change = await connection.frame('event');
    const submit = await connection.frame('event');
    assert.deepEqual(change[4], { type: 'change', event: 'validate', value: 'title=draft&other=a+b%26c&body=x&_target=title' });
    assert.deepEqual(submit[4], { type: 'submit', event: 'save', value: 'title=draft&other=a+b%26c&body=x' });
    assert.deepEqual(
      await page.evaluate(() => [document.getElementById('edit').getAttribute('aria-busy'), document.getElementById('save').disabled]),
      ['true', true]
    );
    connection.reply(change, 'ok', { regions: {} });
    // The submit reply resets the form; the focused title takes it (the user submitted it).
    connection.reply(submit, 'ok', { regions: { edit: formWith('') }, flash: { info: 'Saved' } });
    await page.waitForFunction(() => document.getElementById('edit').getAttribute('aria-busy') === null);
    assert.deepEqual(
      await page.evaluate(() => [document.getElementById('save').disabled, document.getElementById('title').value]),
      [false, '']
    );
    assert.equal(await page.textContent('#lb-flash .flash-info'), 'Saved ×');
    assert.equal(join[2], 'lv:record_edit');
  });

  test('shows "Reconnecting…" when the socket drops and rejoins with the same token and tab id', async () => {
    await page.goto(`${server.base}/page`);
    const first = await server.nextConnection();
    const join = await first.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');

    first.ws.terminate();
    const second = await server.nextConnection();
    const rejoin = await second.frame('phx_join');
    // The rejoin is not answered yet: the page says it is reconnecting.
    await page.waitForSelector('body[data-lb-state=reconnecting]');
    const status = await page.evaluate(() => {
      const element = document.getElementById('lb-status');
      return { hidden: element.hidden, text: element.textContent, warn: element.classList.contains('lb-status-warn') };
    });
    assert.deepEqual(status, { hidden: false, text: 'Reconnecting\u2026', warn: true });
    assert.equal(rejoin[4].token, join[4].token);
    assert.equal(rejoin[4].tab_id, join[4].tab_id);
    assert.notEqual(rejoin[0], join[0], 'a new join ref');

    second.reply(rejoin, 'ok', { rendered: { regions: { main: '<div id="main" data-lb-region>back</div>' } } });
    // The page's form is offered to the fresh view first (form recovery); its answer completes the rejoin.
    const recovery = await second.frame('event');
    assert.deepEqual(recovery[4], { type: 'change', event: 'validate', value: 'title=&other=a+b%26c&body=x' });
    second.reply(recovery, 'ok', { regions: {} });
    await page.waitForSelector('body[data-lb-state=joined]');
    assert.equal(await page.isHidden('#lb-status'), true);
    assert.equal(await page.textContent('#main'), 'back');
  });

  test('a rejoin offers what the user typed to the fresh view before its render replaces the page', async () => {
    await page.goto(`${server.base}/page`);
    const first = await server.nextConnection();
    await first.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    await page.fill('#title', 'typed');
    const change = await first.frame('event');
    // Acknowledged (the server had it), by a render that names the recovery event: whether the reply is applied
    // before or after the attribute is set below, the form ends with it.
    const recovering = (html) => html.replace('phx-change="validate"', 'phx-change="validate" phx-auto-recover="recover"');
    first.reply(change, 'ok', { regions: { edit: recovering(formWith('typed')) } });
    await page.evaluate(() => {
      document.getElementById('edit').setAttribute('phx-auto-recover', 'recover');
      document.activeElement.blur(); // a focused input keeps its value through patches: not what is tested here
    });
    await page.waitForFunction(() => !document.activeElement || document.activeElement === document.body);

    first.ws.terminate();
    const second = await server.nextConnection();
    const rejoin = await second.frame('phx_join');
    second.reply(rejoin, 'ok', { rendered: { regions: { edit: formWith('from the fresh view') } } });
    const recovery = await second.frame('event');
    assert.deepEqual(recovery[4], { type: 'change', event: 'recover', value: 'title=typed&other=a+b%26c&body=x' });
    // Until the view answered, the page keeps what the user typed and is not live yet.
    await page.waitForTimeout(100);
    assert.equal(await page.inputValue('#title'), 'typed');
    assert.equal(await state(), 'reconnecting');
    // The join's render, then the recovery's answer, in one go.
    second.reply(recovery, 'ok', { regions: { edit: formWith('typed (recovered)') }, flash: { info: 'Back' } });
    await page.waitForSelector('body[data-lb-state=joined]');
    assert.equal(await page.inputValue('#title'), 'typed (recovered)');
    assert.equal(await page.textContent('#lb-flash .flash-info'), 'Back ×');

    // phx-auto-recover="ignore" opts out: the next rejoin shows the fresh view at once.
    await page.evaluate(() => document.getElementById('edit').setAttribute('phx-auto-recover', 'ignore'));
    second.ws.terminate();
    const third = await server.nextConnection();
    const again = await third.frame('phx_join');
    third.reply(again, 'ok', { rendered: { regions: { edit: formWith('fresh') } } });
    await page.waitForFunction(() => document.getElementById('title').value === 'fresh');
    assert.equal(await state(), 'joined');
    assert.equal(await third.frames.seen((frame) => frame[3] === 'event', 300), false, 'no recovery was sent');
  });

  test('a crashed view (phx_error) is rejoined on the same socket; stale frames are ignored', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    connection.send([join[0], join[0], join[2], 'phx_error', {}]);
    const rejoin = await connection.frame('phx_join');
    assert.notEqual(rejoin[0], join[0]);
    await page.waitForSelector('body[data-lb-state=reconnecting]');
    assert.equal(await page.textContent('#lb-status'), 'Reconnecting\u2026');
    connection.reply(rejoin, 'ok', { rendered: { regions: { main: '<div id="main" data-lb-region>rejoined</div>' } } });
    const recovery = await connection.frame('event');
    assert.equal(recovery[0], rejoin[0], 'the recovery goes to the new join');
    connection.reply(recovery, 'ok', { regions: {} });
    await page.waitForSelector('body[data-lb-state=joined]');
    // A frame of the old join must not be applied.
    connection.send([join[0], null, join[2], 'diff', { regions: { main: '<div id="main" data-lb-region>stale</div>' } }]);
    await page.waitForTimeout(150);
    assert.equal(await page.textContent('#main'), 'rejoined');
  });

  test('sends heartbeats, and reconnects when one goes unanswered', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    connection.answerHeartbeats = false;
    const second = await server.nextConnection(9_000);
    const [first] = connection.heartbeats;
    assert.equal(first[0], null);
    assert.equal(first[2], 'phoenix');
    assert.equal(first[3], 'heartbeat');
    assert.deepEqual(first[4], {});
    await second.acceptJoin({ rendered: { regions: {} } });
    second.reply(await second.frame('event'), 'ok', { regions: {} }); // the form's recovery
    await page.waitForSelector('body[data-lb-state=joined]');
  });

  test('heartbeats at Phoenix\'s 30 s by default: the server pings a quiet socket, so nothing faster is needed', async () => {
    await page.goto(`${server.base}/default-heartbeat`);
    const connection = await server.nextConnection();
    await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    await page.waitForTimeout(4_000);
    assert.equal(connection.heartbeats.length, 0, 'no heartbeat within 4 s (the old interval was 3 s)');
  });

  test('an expired token stops reconnecting and offers a reload', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.frame('phx_join');
    connection.reply(join, 'error', { reason: 'expired' });
    await page.waitForSelector('body[data-lb-state=expired]');
    assert.equal(await page.evaluate(() => document.getElementById('lb-status').firstChild.nodeValue), 'This page expired.');
    assert.equal(await page.textContent('#lb-status button'), 'Reload');
    assert.equal(await server.connections.seen(() => true, 700), false, 'it reconnected after expiry');
    assert.equal(await connection.frames.seen((frame) => frame[3] === 'phx_join', 10), false, 'it rejoined after expiry');
    await Promise.all([page.waitForEvent('load'), page.click('#lb-status button')]);
    await server.nextConnection();
  });

  test('a join refused with a redirect follows it', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.frame('phx_join');
    connection.reply(join, 'error', { reason: 'redirect', redirect: { to: '/next' } });
    await page.waitForURL(`${server.base}/next`);
  });

  test('following a link sends phx_leave first, waits for its reply, and does not reconnect', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    const join = await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    const mark = server.log.length;

    await page.click('#next');
    const leave = await connection.frame('phx_leave');
    assert.deepEqual(leave.slice(0, 3), [join[0], leave[1], 'lv:record_edit']);
    assert.deepEqual(leave[4], {});
    connection.reply(leave, 'ok', {});
    await page.waitForURL(`${server.base}/next`);
    await page.waitForSelector('#arrived');
    assert.deepEqual(server.log.slice(mark), ['frame phx_leave', 'GET /next']);
    assert.equal(await server.connections.seen(() => true, 300), false);
  });

  test('a link navigates after 300 ms even when the leave is not answered; data-lb-native links are left alone', async () => {
    await page.goto(`${server.base}/page`);
    const connection = await server.nextConnection();
    await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    const started = Date.now();
    await page.click('#next');
    await connection.frame('phx_leave');
    await page.waitForURL(`${server.base}/next`);
    assert.ok(Date.now() - started >= 250, 'did not wait for the leave reply');

    await page.goto(`${server.base}/page`);
    const again = await server.nextConnection();
    await again.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    await page.click('#native');
    await page.waitForURL(`${server.base}/next`);
    assert.equal(await again.frames.seen((frame) => frame[3] === 'phx_leave', 100), false);
  });
});

// -------------------------------------------------------------------------------------------------------------------
// The rich-text editor
// -------------------------------------------------------------------------------------------------------------------

const CSS_PATH = fileURLToPath(new URL('../../crates/livebaton-web/assets/livebaton.css', import.meta.url));

/** The editor's markup as livebaton_web::live::RichTextEditor renders it (its contract with the client). */
function editorMarkup(value = '', { id = 'body', label = 'body-label' } = {}) {
  const escaped = value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const button = (command, name, text, toggle = true) =>
    `<button type="button" class="lb-rich-button" data-lb-command="${command}" aria-label="${name}"` +
    `${toggle ? ' aria-pressed="false"' : ''} title="${name}"><span aria-hidden="true">${text}</span></button>`;
  return (
    `<div class="lb-rich" data-lb-rich>` +
    `<div class="lb-rich-toolbar" id="${id}-toolbar" role="toolbar" aria-label="Formatting" aria-controls="${id}-area" data-lb-ignore>` +
    button('bold', 'Bold', 'B') +
    button('italic', 'Italic', 'I') +
    button('link', 'Link', 'Link', false) +
    button('h2', 'H2 heading', 'H2') +
    button('h3', 'H3 heading', 'H3') +
    button('ul', 'Bulleted list', 'List') +
    button('ol', 'Numbered list', 'List') +
    button('quote', 'Quote', 'Quote') +
    `</div>` +
    `<div class="lb-rich-area" id="${id}-area" role="textbox" aria-multiline="true" aria-labelledby="${label}" tabindex="0" data-lb-ignore="contenteditable aria-readonly"></div>` +
    `<textarea class="lb-rich-source" id="${id}" name="${id}">${escaped}</textarea>` +
    `</div>`
  );
}

/** A form region holding one editor (in a fieldset, disabled for a spectator), as a live page renders it. */
function editorForm(value = '', { disabled = false } = {}) {
  return (
    `<form id="f" data-lb-region><input id="before" name="title"><fieldset id="fs"${disabled ? ' disabled' : ''}>` +
    `<label id="body-label" for="body">Body</label>${editorMarkup(value)}</fieldset></form>`
  );
}

/** A static page with the editor form, the client and its stylesheet; records `input`/`change` events of #body. */
async function editorPage(value = '', options = {}) {
  await staticPage(editorForm(value, options));
  await page.addStyleTag({ path: CSS_PATH });
  await page.evaluate(() => {
    window.__events = [];
    for (const type of ['input', 'change']) {
      document.addEventListener(type, (event) => {
        if (event.target.id === 'body') window.__events.push(type);
      });
    }
  });
}

const areaHtml = () => page.evaluate(() => document.getElementById('body-area').innerHTML);
const sourceValue = () => page.evaluate(() => document.getElementById('body').value);
const events = () => page.evaluate(() => window.__events);

describe('rich-text editor', { timeout: TEST_TIMEOUT }, () => {
  test('shows the textarea value cleaned, instead of the textarea, and is labelled by the field label', async () => {
    await editorPage('<p>Hello <b>world</b><img src=x onerror="window.__ran=1"></p><script>window.__ran=2</script>');
    assert.equal(await areaHtml(), '<p>Hello <b>world</b></p>');
    assert.equal(await page.evaluate(() => document.documentElement.classList.contains('lb-js')), true);
    // The textarea is out of sight and out of the accessibility tree; the area is the textbox named "Body".
    assert.equal(await page.isHidden('#body'), true);
    const box = page.getByRole('textbox', { name: 'Body', exact: true });
    assert.equal(await box.count(), 1);
    assert.equal(await box.getAttribute('id'), 'body-area');
    assert.equal(await box.getAttribute('contenteditable'), 'true');
    assert.equal(await page.getByRole('toolbar', { name: 'Formatting' }).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'Bold', pressed: false }).count(), 1);
    // A click on the label goes to the text, not to the hidden textarea.
    await page.click('#body-label');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'body-area');
    await page.waitForTimeout(50);
    assert.equal(await page.evaluate(() => window.__ran ?? null), null);
  });

  test('typing writes cleaned HTML into the textarea with an input event; leaving it sends a change', async () => {
    await editorPage();
    await page.click('#body-area');
    await page.keyboard.type('Hello');
    await page.keyboard.press('Enter');
    await page.keyboard.type('again');
    assert.equal(await sourceValue(), '<p>Hello</p><p>again</p>');
    assert.ok((await events()).includes('input'), 'no input event on the textarea');
    assert.ok(!(await events()).includes('change'));
    await page.focus('#before');
    assert.equal((await events()).at(-1), 'change');
  });

  test('the toolbar makes bold, headings, lists and quotes, and says which are on', async () => {
    await editorPage();
    await page.click('#body-area');
    await page.keyboard.type('Hello');
    await page.keyboard.press('ControlOrMeta+A');
    await page.click('button[data-lb-command="bold"]');
    assert.equal(await sourceValue(), '<p><b>Hello</b></p>');
    assert.equal(await page.getAttribute('button[data-lb-command="bold"]', 'aria-pressed'), 'true');
    // The button gave the focus back to the text, with its selection.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'body-area');
    await page.click('button[data-lb-command="h2"]');
    assert.equal(await sourceValue(), '<h2><b>Hello</b></h2>');
    assert.equal(await page.getAttribute('button[data-lb-command="h2"]', 'aria-pressed'), 'true');
    await page.click('button[data-lb-command="h2"]');
    assert.equal(await sourceValue(), '<p><b>Hello</b></p>');
    await page.click('button[data-lb-command="ul"]');
    assert.equal(await sourceValue(), '<ul><li><b>Hello</b></li></ul>');
    await page.click('button[data-lb-command="ul"]');
    await page.click('button[data-lb-command="quote"]');
    assert.match(await sourceValue(), /^<blockquote>(<p>)?<b>Hello<\/b>(<\/p>)?<\/blockquote>$/);
    await page.click('button[data-lb-command="quote"]');
    assert.equal(await sourceValue(), '<p><b>Hello</b></p>');
  });

  test('Ctrl/Cmd+B, +I and +K format; a link must be http(s), mailto or relative', async () => {
    await editorPage();
    const answers = ['https://example.com/a?b=1&c=2', 'javascript:alert(1)'];
    const dialogs = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.type());
      if (dialog.type() === 'prompt') dialog.accept(answers.shift());
      else dialog.accept();
    });
    await page.click('#body-area');
    await page.keyboard.press('ControlOrMeta+B');
    await page.keyboard.type('bold');
    await page.keyboard.press('ControlOrMeta+B');
    await page.keyboard.press('ControlOrMeta+I');
    await page.keyboard.type(' it');
    await page.keyboard.press('ControlOrMeta+I');
    await page.keyboard.type(' ');
    await page.keyboard.press('ControlOrMeta+K');
    assert.equal(await sourceValue(), '<p><b>bold</b><i> it</i> <a href="https://example.com/a?b=1&amp;c=2">https://example.com/a?b=1&amp;c=2</a></p>');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('ControlOrMeta+K');
    assert.deepEqual(dialogs, ['prompt', 'prompt', 'alert']);
    assert.doesNotMatch(await sourceValue(), /javascript/);
    assert.doesNotMatch(await areaHtml(), /javascript/);
  });

  test('a paste keeps only the allowed markup', async () => {
    await editorPage();
    await page.click('#body-area');
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.setData(
        'text/html',
        '<meta charset="utf-8"><p onclick="window.__ran=1">hi <script>window.__ran=2</script><span style="color:red">y</span>' +
          '<img src=x onerror="window.__ran=3"></p><h1 class="x">Title</h1><div>one</div><div>two</div>' +
          '<a href="javascript:alert(1)">bad</a> <a href="/ok" target="_blank" title="t">ok</a><table><tr><td>cell</td></tr></table>'
      );
      data.setData('text/plain', 'hi y');
      const event = new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
      document.getElementById('body-area').dispatchEvent(event);
    });
    assert.equal(
      await sourceValue(),
      '<p>hi y</p><h2>Title</h2><p>one</p><p>two</p><p>bad <a href="/ok">ok</a></p><p>cell</p>'
    );
    const live = await areaHtml();
    assert.doesNotMatch(live, /onclick|onerror|<img|<script|javascript:|target=/);
    await page.waitForTimeout(50);
    assert.equal(await page.evaluate(() => window.__ran ?? null), null);
  });

  test('a drop from outside is cleaned like a paste', async () => {
    await editorPage('<p>text</p>');
    await page.evaluate(() => {
      const area = document.getElementById('body-area');
      const box = area.querySelector('p').getBoundingClientRect();
      const data = new DataTransfer();
      data.setData('text/html', '<img src=x onerror="window.__ran=1"><b style="color:red">dropped</b>');
      const drop = new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true, clientX: box.right + 5, clientY: box.top + box.height / 2 });
      area.dispatchEvent(drop);
    });
    assert.equal(await sourceValue(), '<p>text<b>dropped</b></p>');
    assert.doesNotMatch(await areaHtml(), /<img|style=/);
  });

  test('plain text pastes as escaped paragraphs', async () => {
    await editorPage();
    await page.click('#body-area');
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.setData('text/plain', 'a <b>not bold</b>\nline two\n\nsecond & last');
      document.getElementById('body-area').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    assert.equal(await sourceValue(), '<p>a &lt;b&gt;not bold&lt;/b&gt;<br>line two</p><p>second &amp; last</p>');
  });

  test('a patch changing the textarea re-renders the area (cleaned); the morph leaves the area itself alone', async () => {
    await editorPage('<p>one</p>');
    await mark('#body-area', 'same');
    await morph('f', editorForm('<p>from the <i>owner</i></p><p onmouseover="window.__ran=1"><img src=x onerror="window.__ran=2">two</p>'));
    assert.equal(await areaHtml(), '<p>from the <i>owner</i></p><p>two</p>');
    assert.equal(await markOf('#body-area'), 'same');
    assert.equal(await page.getAttribute('#body-area', 'contenteditable'), 'true');
    // A patch that does not change the value keeps what the area shows (and the caret in it).
    await page.evaluate(() => document.querySelector('#body-area p').append(' local'));
    await morph('f', editorForm('<p>from the <i>owner</i></p><p onmouseover="window.__ran=1"><img src=x onerror="window.__ran=2">two</p>'));
    assert.equal(await areaHtml(), '<p>from the <i>owner</i> local</p><p>two</p>');
    await page.waitForTimeout(50);
    assert.equal(await page.evaluate(() => window.__ran ?? null), null);
  });

  test('values are rebuilt from the allow-list: links kept only when safe, deep nesting flattened to text', async () => {
    const deep = '<div><b>'.repeat(200) + 'deep' + '</b></div>'.repeat(200);
    await editorPage(
      '<p><a href="/online" title="go online" onclick="x">ok</a> <a href="java\tscript:alert(1)">bad</a> ' +
        '<a href="mailto:a@example.com">mail</a> <a href="data:text/html,x">data</a></p>' + deep
    );
    const html = await areaHtml();
    assert.match(html, /^<p><a href="\/online">ok<\/a> bad <a href="mailto:a@example.com">mail<\/a> data<\/p>/);
    assert.match(html, /deep<\/b>(<\/b>)*<\/p>$/);
    // No deeper than the server allows (32), whatever came in.
    const depth = await page.evaluate(() => {
      let most = 0;
      for (const element of document.getElementById('body-area').querySelectorAll('*')) {
        let level = 0;
        for (let at = element; at.id !== 'body-area'; at = at.parentElement) level += 1;
        most = Math.max(most, level);
      }
      return most;
    });
    assert.ok(depth <= 33, `nested ${depth} deep`);
  });

  test('a disabled fieldset makes it read-only with a disabled toolbar; a patch that enables it re-enables them', async () => {
    await editorPage('<p>watch</p>', { disabled: true });
    const state = () =>
      page.evaluate(() => ({
        editable: document.getElementById('body-area').getAttribute('contenteditable'),
        readonly: document.getElementById('body-area').getAttribute('aria-readonly'),
        disabled: [...document.querySelectorAll('#body-toolbar button')].map((button) => button.disabled),
      }));
    assert.deepEqual(await state(), { editable: 'false', readonly: 'true', disabled: Array(8).fill(true) });
    await page.click('#body-area');
    await page.keyboard.type('x');
    await page.keyboard.press('ControlOrMeta+B');
    assert.equal(await areaHtml(), '<p>watch</p>');
    assert.equal(await sourceValue(), '<p>watch</p>');
    assert.deepEqual(await events(), []);

    // Promoted: the server enables the fieldset.
    await morph('f', editorForm('<p>watch</p>'));
    assert.deepEqual(await state(), { editable: 'true', readonly: null, disabled: Array(8).fill(false) });
    await page.click('#body-area');
    await page.keyboard.press('End');
    await page.keyboard.type('ed');
    assert.equal(await sourceValue(), '<p>watched</p>');

    // And back: demoted again.
    await morph('f', editorForm('<p>watched</p>', { disabled: true }));
    assert.deepEqual(await state(), { editable: 'false', readonly: 'true', disabled: Array(8).fill(true) });
  });

  test('the toolbar is one Tab stop; arrows move in it; Space on a button formats and returns to the text', async () => {
    await editorPage('<p>word</p>');
    await page.click('#body-area');
    await page.keyboard.press('ControlOrMeta+A');
    await page.focus('#before');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Bold');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Italic');
    await page.keyboard.press('End');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Quote');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Quote');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Space');
    assert.equal(await sourceValue(), '<p><b>word</b></p>');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'body-area');
    // One stop: from the toolbar's last-used button, Tab goes to the text.
    await page.focus('#before');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Bold');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'body-area');
  });

  test('data-lb-ignore: the morph keeps the children and the named attributes, and syncs the others', async () => {
    await staticPage('<div id="r"><div id="x" data-lb-ignore="contenteditable" class="a"><b>client</b></div></div>');
    await page.evaluate(() => document.getElementById('x').setAttribute('contenteditable', 'true'));
    await morph('r', '<div id="r"><div id="x" data-lb-ignore="contenteditable" class="b" title="t">server</div></div>');
    assert.deepEqual(
      await page.evaluate(() => {
        const x = document.getElementById('x');
        return [x.innerHTML, x.className, x.title, x.getAttribute('contenteditable')];
      }),
      ['<b>client</b>', 'b', 't', 'true']
    );
  });
});

/** editorForm as a live collaborative form renders it: phx-change, phx-submit and a Save button. */
function liveEditorForm(value, options) {
  return editorForm(value, options)
    .replace('<form id="f"', '<form id="f" phx-change="validate" phx-submit="save"')
    .replace('</fieldset></form>', '</fieldset><button id="save" type="submit">Save</button></form>');
}

describe('rich-text editor in a live form', { timeout: 2 * TEST_TIMEOUT }, () => {
  let server;

  before(async () => {
    server = await startFakeServer();
    server.pages.set('/editor', livePage('editor', liveEditorForm('<p>draft</p>')));
  });

  after(async () => {
    await server?.close();
  });

  test('an edit is sent like any input (debounced, _target the textarea); a pushed value shows; Ctrl+S saves', async () => {
    await page.goto(`${server.base}/editor`);
    const connection = await server.nextConnection();
    const join = await connection.acceptJoin({ rendered: { regions: {} } });
    await page.waitForSelector('body[data-lb-state=joined]');
    assert.equal(await areaHtml(), '<p>draft</p>');
    await page.click('#body-area');
    await page.keyboard.press('End');
    await page.keyboard.type(' one');
    const change = await connection.frame('event');
    assert.deepEqual(change[4], {
      type: 'change',
      event: 'validate',
      value: new URLSearchParams({ title: '', body: '<p>draft one</p>', _target: 'body' }).toString(),
    });
    // Unacknowledged, the edit survives a push of an older value.
    const stale = liveEditorForm('<p>draft</p>');
    connection.send([join[0], null, 'lv:editor', 'diff', { regions: { f: stale } }]);
    await page.waitForTimeout(100);
    assert.equal(await sourceValue(), '<p>draft one</p>');
    assert.equal(await areaHtml(), '<p>draft one</p>');
    connection.reply(change, 'ok', { regions: {} });

    // Ctrl+S in the editor saves: what was just typed is flushed first, then the submit carries it.
    await page.keyboard.type(' two');
    await page.keyboard.press('ControlOrMeta+S');
    const flushed = await connection.frame('event');
    assert.equal(flushed[4].type, 'change');
    const submit = await connection.frame('event');
    assert.equal(submit[4].type, 'submit');
    assert.equal(new URLSearchParams(submit[4].value).get('body'), '<p>draft one two</p>');
    connection.reply(flushed, 'ok', { regions: {} });
    connection.reply(submit, 'ok', { regions: {} });

    // Another person's value arrives: the area shows it.
    const pushed = liveEditorForm('<p>theirs <b>bold</b></p>', { disabled: true });
    connection.send([join[0], null, 'lv:editor', 'diff', { regions: { f: pushed } }]);
    await page.waitForFunction(() => document.getElementById('body-area').innerHTML === '<p>theirs <b>bold</b></p>');
    assert.equal(await page.getAttribute('#body-area', 'contenteditable'), 'false');
  });
});
