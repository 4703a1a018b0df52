/*
 * livebaton.js — the browser client of livebaton's live pages.
 *
 * Served as a classic `<script defer>` (no build step, no dependencies). On a page with `#lb-root` it opens a Phoenix
 * Channels V2 WebSocket, joins `lv:<view>` with the page's signed token, sends clicks, form changes and submits as
 * events, and morphs the live regions the server sends back. Without `#lb-root` it never connects.
 *
 * Sections: constants · DOM morphing · flash · status and state · the socket · forms · rich-text editor · events · boot
 * · API.
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------------------------------

  var SOCKET_PATH = '/live/websocket';
  var PROTOCOL_VERSION = '2.0.0';
  // Phoenix's interval. The server keeps a quiet socket alive by pinging it (the browser answers by itself), so the
  // heartbeat only tells this client that the server is still there. A page may set another interval with
  // <meta name="lb-heartbeat-ms" content="…">.
  var HEARTBEAT_MS = 30000;
  // Reconnect and rejoin delays by attempt; the last one repeats.
  var BACKOFF_MS = [100, 500, 1000, 2000, 5000];
  var DEFAULT_DEBOUNCE_MS = 300;
  // How long a link click waits for the `phx_leave` reply before navigating anyway.
  var LEAVE_WAIT_MS = 300;
  var TAB_ID_KEY = 'lb-tab-id';
  // Marks submit buttons this client disabled during a submit, so they can be told apart from ones the server disabled.
  var BUSY_MARK = 'data-lb-busy-disabled';
  var FORCE_ATTRIBUTE = 'data-lb-force';
  // Marks an element whose children belong to client code (the rich-text editor's area and toolbar): the morph leaves
  // them alone, and the attributes its value names (space-separated) too. Its other attributes follow the server.
  var IGNORE_ATTRIBUTE = 'data-lb-ignore';
  // Attributes whose value is a URL a browser may navigate to or load.
  var URL_ATTRIBUTES = ['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'poster'];

  // ---------------------------------------------------------------------------------------------------------------
  // DOM morphing
  //
  // morph(element, html) turns `element` into the element `html` describes while keeping every node it can: the
  // focused input, its caret, scroll positions and listeners survive a patch. The new markup is parsed by a
  // <template>, whose content is inert (no script runs, nothing loads), and then defused (inline handlers and
  // javascript: URLs removed) before any of it is copied into the page.
  // ---------------------------------------------------------------------------------------------------------------

  /** Parses the outer HTML of one element; returns that element (inside an inert template) or null. */
  function parseElement(html) {
    var template = document.createElement('template');
    template.innerHTML = String(html);
    var element = template.content.firstElementChild;
    if (element) defuse(element);
    return element;
  }

  /**
   * Removes what could run code once the markup is live. <script> elements parsed by a template are flagged "already
   * started" and never run (copies keep the flag), but an `<img onerror>` would fire as soon as the image loads, so
   * inline handlers and javascript: URLs are stripped. The server escapes user data; this is defense in depth.
   */
  function defuse(root) {
    var elements = [root].concat(Array.prototype.slice.call(root.querySelectorAll('*')));
    for (var i = 0; i < elements.length; i++) {
      var element = elements[i];
      var attributes = Array.prototype.slice.call(element.attributes);
      for (var j = 0; j < attributes.length; j++) {
        var attribute = attributes[j];
        var name = attribute.name.toLowerCase();
        if (name.indexOf('on') === 0 || name === 'srcdoc' || (isUrlAttribute(name) && isScriptUrl(attribute.value))) {
          element.removeAttributeNode(attribute);
        }
      }
    }
  }

  function isUrlAttribute(name) {
    return URL_ATTRIBUTES.indexOf(name) !== -1;
  }

  function isScriptUrl(value) {
    // Browsers ignore control characters and spaces inside the scheme ("java\tscript:"), so compare without them.
    var compact = String(value).replace(/[\u0000-\u0020]/g, '').toLowerCase();
    return compact.indexOf('javascript:') === 0 || compact.indexOf('vbscript:') === 0;
  }

  /** A live copy of a parsed node. Copies of template-parsed scripts keep their "already started" flag. */
  function importCopy(node) {
    return document.importNode(node, true);
  }

  /**
   * Morphs `element` in place into the element described by `html`. Returns the element now in the page (`element`
   * itself, or its replacement when the tag or id changed).
   */
  function morph(element, html) {
    var target = parseElement(html);
    if (!target) return element;
    var focused = document.activeElement;
    var selection = focused ? readSelection(focused) : null;
    var result = morphNode(element, target);
    restoreFocus(focused, selection);
    // The server may have changed an editor's value or made it read-only: the editor follows its textarea.
    richText.refresh(result);
    return result;
  }

  /** A move with insertBefore (where moveBefore is missing) blurs the moved element: give focus back. */
  function restoreFocus(previous, selection) {
    if (!previous || previous === document.body || previous === document.activeElement) return;
    if (!previous.isConnected || previous.disabled || typeof previous.focus !== 'function') return;
    previous.focus({ preventScroll: true });
    restoreSelection(previous, selection);
  }

  /** Morphs the live node `from` into the parsed node `to`; returns the node now in the page. */
  function morphNode(from, to) {
    if (from.nodeType !== to.nodeType) return replaceNode(from, to);
    if (from.nodeType !== Node.ELEMENT_NODE) {
      // Text, comment (and CDATA/processing-instruction) nodes: only their text can change.
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return from;
    }
    if (!sameElementKind(from, to)) return replaceNode(from, to);
    // A script is never patched in place: changing the text or src of one that never ran would run it. Its
    // replacement is a copy of an inert template script.
    if (from.localName === 'script') return from.isEqualNode(to) ? from : replaceNode(from, to);
    // A template's children live in its `content`, which child morphing does not see: copy it whole.
    if (from.localName === 'template') return replaceNode(from, to);
    morphElement(from, to);
    return from;
  }

  function sameElementKind(from, to) {
    return (
      from.localName === to.localName &&
      from.namespaceURI === to.namespaceURI &&
      (from.getAttribute('id') || '') === (to.getAttribute('id') || '')
    );
  }

  function replaceNode(from, to) {
    var fresh = importCopy(to);
    if (from.parentNode) from.parentNode.replaceChild(fresh, from);
    return fresh;
  }

  /** Same tag and id: attributes, then children, then the form properties the attributes do not drive. */
  function morphElement(from, to) {
    var kind = controlKind(from);
    var keep = kind ? keepsUserValue(from, to) : false;
    // Setting a value moves the caret to the end: remember it first, for a focused control the server overrides.
    var selection = kind && !keep ? readSelection(from) : null;
    var owned = clientOwned(to);
    syncAttributes(from, to, (skippedAttributes(from, to, kind, keep) || []).concat(owned || []));
    // A textarea's children are its default text; its value is handled as a property below.
    if (kind !== 'textarea' && !owned) morphChildren(from, to);
    if (kind && !keep) {
      syncControlValue(from, to, kind);
      restoreSelection(from, selection);
    }
  }

  /**
   * Attributes left alone on a control whose value the user owns: `value` and `checked` would otherwise change what
   * an untouched ("clean") control shows, and an option's `selected` would change a kept select's choice.
   */
  function skippedAttributes(from, to, kind, keep) {
    if (keep && kind === 'input') return ['value', 'checked'];
    if (from.localName === 'option') {
      var select = from.closest('select');
      var newSelect = to.closest('select');
      if (select && newSelect && keepsUserValue(select, newSelect)) return ['selected'];
    }
    return null;
  }

  /** The attributes client code owns on an element marked data-lb-ignore (maybe none), or null when it is not marked. */
  function clientOwned(to) {
    if (!to.hasAttribute(IGNORE_ATTRIBUTE)) return null;
    return to
      .getAttribute(IGNORE_ATTRIBUTE)
      .toLowerCase()
      .split(/\s+/)
      .filter(function (name) {
        return name !== '';
      });
  }

  function syncAttributes(from, to, skip) {
    var i;
    var attribute;
    var toAttributes = to.attributes;
    for (i = 0; i < toAttributes.length; i++) {
      attribute = toAttributes[i];
      if (skip && skip.indexOf(attribute.name) !== -1) continue;
      if (from.getAttributeNS(attribute.namespaceURI, attribute.localName) !== attribute.value) {
        from.setAttributeNS(attribute.namespaceURI, attribute.name, attribute.value);
      }
    }
    // Walk backwards: removing an attribute shifts the live list.
    var fromAttributes = from.attributes;
    for (i = fromAttributes.length - 1; i >= 0; i--) {
      attribute = fromAttributes[i];
      if (skip && skip.indexOf(attribute.name) !== -1) continue;
      if (!to.hasAttributeNS(attribute.namespaceURI, attribute.localName)) {
        from.removeAttributeNS(attribute.namespaceURI, attribute.localName);
      }
    }
  }

  /**
   * Morphs the children of `fromParent` into those of `toParent`. A new child with an id reuses the old child with
   * that id wherever it is (moved into place); other children reuse the old un-keyed children of the same tag (or
   * node type) in order. Old children left over are removed, new ones inserted.
   */
  function morphChildren(fromParent, toParent) {
    var keyed = Object.create(null);
    var unkeyed = Object.create(null);
    var child;
    for (child = fromParent.firstChild; child; child = child.nextSibling) {
      var id = nodeKey(child);
      if (id) keyed[id] = child;
      else (unkeyed[nodeKind(child)] = unkeyed[nodeKind(child)] || []).push(child);
    }
    var used = new Set();
    // Every child before `cursor` is final; `cursor` and everything after it are old children not placed yet.
    var cursor = fromParent.firstChild;
    var newChildren = Array.prototype.slice.call(toParent.childNodes);
    for (var i = 0; i < newChildren.length; i++) {
      var next = newChildren[i];
      var match = findMatch(next, keyed, unkeyed, used);
      if (!match) {
        fromParent.insertBefore(importCopy(next), cursor);
        continue;
      }
      used.add(match);
      if (match === cursor) cursor = cursor.nextSibling;
      else moveBefore(fromParent, match, cursor);
      morphNode(match, next);
    }
    while (cursor) {
      var stale = cursor;
      cursor = cursor.nextSibling;
      fromParent.removeChild(stale);
    }
  }

  function findMatch(next, keyed, unkeyed, used) {
    var id = nodeKey(next);
    if (id) {
      var candidate = keyed[id];
      return candidate && !used.has(candidate) ? candidate : null;
    }
    var queue = unkeyed[nodeKind(next)];
    while (queue && queue.length) {
      var old = queue.shift();
      if (!used.has(old)) return old;
    }
    return null;
  }

  /** The id of an element child (its key), or '' for anything else. */
  function nodeKey(node) {
    return node.nodeType === Node.ELEMENT_NODE ? node.getAttribute('id') || '' : '';
  }

  /** What un-keyed children are matched by: the tag (with namespace) for elements, else the node type. */
  function nodeKind(node) {
    return node.nodeType === Node.ELEMENT_NODE ? (node.namespaceURI || '') + ' ' + node.localName : '#' + node.nodeType;
  }

  /**
   * Moves `node` before `reference` (null: to the end). Element.moveBefore keeps focus, selection and media state
   * through the move where the browser has it; elsewhere (or where it refuses, e.g. on a detached tree) a plain
   * insertBefore does, and morph puts a lost focus back.
   */
  function moveBefore(parent, node, reference) {
    if (typeof parent.moveBefore === 'function') {
      try {
        parent.moveBefore(node, reference);
        return;
      } catch (error) {
        // fall through to insertBefore
      }
    }
    parent.insertBefore(node, reference);
  }

  // --- Form controls --------------------------------------------------------------------------------------------

  /** 'input' | 'textarea' | 'select' for form controls whose value is a property, else ''. */
  function controlKind(element) {
    var name = element.localName;
    if (element.namespaceURI !== 'http://www.w3.org/1999/xhtml') return '';
    return name === 'input' || name === 'textarea' || name === 'select' ? name : '';
  }

  /**
   * Whether a control keeps the value the user gave it rather than the server's: while it has focus, or while an
   * edit of it has not been acknowledged. The server wins when the markup carries data-lb-force, when the control
   * becomes disabled or read-only (the user cannot edit it any more), and for the form whose submit is answered.
   */
  function keepsUserValue(from, to) {
    if (to.hasAttribute(FORCE_ATTRIBUTE)) return false;
    if (to.hasAttribute('readonly') || matchesSafely(to, ':disabled')) return false;
    return (focusKeepsValue(from) && !(forcedForm && from.form === forcedForm)) || forms.hasPendingEdit(from);
  }

  /**
   * The focus rule protects what the user is typing or choosing. A checkbox or radio stays focused after a click,
   * long after its edit was acknowledged; keeping its state then would only hide other people's changes, and its
   * unacknowledged edits are protected anyway.
   */
  function focusKeepsValue(control) {
    if (control !== document.activeElement) return false;
    return !(control.localName === 'input' && /^(checkbox|radio)$/i.test(control.type));
  }

  function matchesSafely(element, selector) {
    try {
      return element.matches(selector);
    } catch (error) {
      return false;
    }
  }

  /** Sets the value (or checkedness, or selection) the new markup describes. */
  function syncControlValue(from, to, kind) {
    if (kind === 'input') {
      var type = (from.getAttribute('type') || 'text').toLowerCase();
      if (type === 'checkbox' || type === 'radio') {
        from.checked = to.hasAttribute('checked');
      } else if (type !== 'file') {
        // A file input's value can only be cleared by script, and the server never knows it anyway.
        setValue(from, to.getAttribute('value') || '');
      }
    } else if (kind === 'textarea') {
      var text = to.textContent;
      if (from.defaultValue !== text) from.defaultValue = text;
      setValue(from, text);
    } else if (kind === 'select') {
      // The options were morphed first, so their `selected` attributes are the server's.
      for (var i = 0; i < from.options.length; i++) {
        var option = from.options[i];
        option.selected = option.hasAttribute('selected');
      }
    }
  }

  function setValue(control, value) {
    if (control.value !== value) control.value = value;
  }

  /** The caret and selection of a focused text control, or null. */
  function readSelection(control) {
    if (control !== document.activeElement) return null;
    try {
      if (typeof control.selectionStart !== 'number') return null;
      return { start: control.selectionStart, end: control.selectionEnd, direction: control.selectionDirection };
    } catch (error) {
      return null; // types without a selection (email, number) throw in some browsers
    }
  }

  /** Puts a remembered caret back, clamped to the (possibly shorter) new value. */
  function restoreSelection(control, selection) {
    if (!selection || control !== document.activeElement) return;
    var length = control.value.length;
    try {
      control.setSelectionRange(
        Math.min(selection.start, length),
        Math.min(selection.end, length),
        selection.direction || 'none'
      );
    } catch (error) {
      // the control's type changed to one without a selection
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Applying what the server sends
  // ---------------------------------------------------------------------------------------------------------------

  // The form whose submit reply is being applied: its focused control takes the server's value (a submit usually
  // resets the form, and the user is done typing in it).
  var forcedForm = null;

  /** Morphs each region `{id: outerHTML}` found inside #lb-root. */
  function applyRegions(regions) {
    if (!regions) return;
    var root = document.getElementById('lb-root');
    if (!root) return;
    Object.keys(regions).forEach(function (id) {
      var element = document.getElementById(id);
      // Only regions of the view: an id outside #lb-root (the status line, the flash) is not the server's to patch.
      if (!element || !root.contains(element)) {
        warn('region #' + id + ' is not on the page');
        return;
      }
      morph(element, regions[id]);
    });
  }

  /**
   * Applies a `diff` push or an event reply: regions, title, flash, then navigation. Exposed as Livebaton.applyDiff.
   */
  function applyDiff(diff) {
    if (!diff || typeof diff !== 'object') return;
    var wasOwner = editingRole() === 'owner';
    applyRegions(diff.regions);
    if (!wasOwner && editingRole() === 'owner') focusPromotedForm();
    if (typeof diff.title === 'string') document.title = diff.title;
    if (diff.flash) showFlash(diff.flash);
    var target = (diff.redirect && diff.redirect.to) || (diff.navigate && diff.navigate.to);
    // `navigate` would be an in-app navigation; a full page load is what this client does for both.
    if (target) {
      // The full page load would drop the flash that came with the redirect ("… was deleted in another session"):
      // carry it over to the page we land on.
      carryFlash(diff.flash, target);
      leaveAndGo(target);
    }
  }

  /** This page's role in a collaborative form's session (`data-role` of its editing bar), if it has one. */
  function editingRole() {
    var bar = document.getElementById('editing-bar');
    return bar ? bar.getAttribute('data-role') : null;
  }

  /**
   * A spectator was just handed the baton: its form's fields are enabled now. If the person was not in a field of
   * their own choosing (focus on the page itself, or on a field that was disabled a moment ago), move focus to the
   * form's first field, so the keyboard can go on from where the eyes are.
   */
  function focusPromotedForm() {
    var root = document.getElementById('lb-root');
    if (!root) return;
    var active = document.activeElement;
    var free = !active || active === document.body || active === document.documentElement || !root.contains(active);
    if (!free && !active.disabled) return;
    var field = root.querySelector(
      'form[phx-submit] input:not([type="hidden"]):not(:disabled), form[phx-submit] textarea:not(:disabled), ' +
        'form[phx-submit] select:not(:disabled)'
    );
    // A rich-text editor's textarea is hidden: its editable area takes the focus.
    if (field) richText.focusTarget(field).focus();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Flash messages
  // ---------------------------------------------------------------------------------------------------------------

  /**
   * Shows `{kind: message}`. New messages replace every older one: what is shown is about the last thing that
   * happened (a red "Not saved" never stays beside the green "Saved." that followed it).
   */
  function showFlash(flash) {
    var container = document.getElementById('lb-flash');
    if (!container || !flash || typeof flash !== 'object') return;
    var fresh = Object.keys(flash).filter(function (kind) {
      var message = flash[kind];
      return message !== null && message !== undefined && message !== '';
    });
    if (!fresh.length) return;
    var old = container.querySelectorAll('.flash');
    for (var i = 0; i < old.length; i++) old[i].remove();
    fresh.forEach(function (rawKind) {
      // The kind becomes part of a class name: keep it to a safe alphabet.
      var kind = /^[a-z0-9_-]+$/i.test(rawKind) ? rawKind : 'info';
      container.appendChild(flashElement(kind, String(flash[rawKind])));
    });
  }

  function flashElement(kind, message) {
    var element = document.createElement('div');
    element.className = 'flash flash-' + kind;
    // Errors interrupt (alert); other kinds are announced politely (status).
    element.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    element.appendChild(document.createTextNode(message + ' '));
    element.appendChild(dismissButton());
    return element;
  }

  function dismissButton() {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'flash-close';
    button.setAttribute('aria-label', 'Dismiss');
    button.textContent = '\u00d7';
    return button;
  }

  // A flash that must outlive a full page load (a redirect's), kept in sessionStorage until the next page shows it.
  var CARRIED_FLASH_KEY = 'lb-carried-flash';

  /** Keeps `flash` for the page at `url` (same origin only), to be shown by showCarriedFlash once it loads. */
  function carryFlash(flash, url) {
    if (!flash || typeof flash !== 'object' || !Object.keys(flash).length) return;
    try {
      var to = new URL(url, location.href);
      if (to.origin !== location.origin) return;
      sessionStorage.setItem(CARRIED_FLASH_KEY, JSON.stringify({ path: to.pathname, flash: flash }));
    } catch (error) {
      // storage disabled or a bad URL: the flash is only lost, as before
    }
  }

  /** Shows (once) a flash carried over by carryFlash, if it was meant for this page. */
  function showCarriedFlash() {
    var carried = null;
    try {
      carried = JSON.parse(sessionStorage.getItem(CARRIED_FLASH_KEY) || 'null');
      sessionStorage.removeItem(CARRIED_FLASH_KEY);
    } catch (error) {
      return;
    }
    if (carried && carried.path === location.pathname) showFlash(carried.flash);
  }

  /** Server-rendered flashes may come without a close button: give them one. */
  function enhanceFlashes() {
    var container = document.getElementById('lb-flash');
    if (!container) return;
    var flashes = container.querySelectorAll('.flash');
    for (var i = 0; i < flashes.length; i++) {
      if (!flashes[i].querySelector('.flash-close')) flashes[i].appendChild(dismissButton());
    }
  }

  /** Handles a click on a flash's close button; returns whether it was one. */
  function dismissFlash(event) {
    var button = closestElement(event.target, '.flash-close');
    if (!button) return false;
    var container = document.getElementById('lb-flash');
    var flash = button.closest('.flash');
    if (!container || !flash || !container.contains(flash)) return false;
    flash.remove();
    return true;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Status line and state
  // ---------------------------------------------------------------------------------------------------------------

  function setState(state) {
    if (document.body) document.body.dataset.lbState = state;
  }

  /**
   * Shows `text` in #lb-status, with a Reload button when `reload`, a "Sign in" link back to this page when `signIn`
   * (to the page's `lb-sign-in` meta; a Reload button without one), styled as a warning when `warn`.
   */
  function showStatus(text, options) {
    var status = document.getElementById('lb-status');
    if (!status) return;
    options = options || {};
    status.textContent = text;
    var signIn = document.querySelector('meta[name="lb-sign-in"]');
    if (options.signIn && signIn) {
      var link = document.createElement('a');
      link.className = 'lb-status-sign-in';
      link.href = signIn.getAttribute('content') + '?return_to=' + encodeURIComponent(location.pathname + location.search);
      link.textContent = 'Sign in';
      status.appendChild(document.createTextNode(' '));
      status.appendChild(link);
    } else if (options.signIn) {
      options.reload = true;
    }
    if (options.reload) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'lb-status-reload';
      button.textContent = 'Reload';
      button.addEventListener('click', function () {
        location.reload();
      });
      status.appendChild(document.createTextNode(' '));
      status.appendChild(button);
    }
    status.classList.toggle('lb-status-warn', !!options.warn);
    status.hidden = false;
  }

  function hideStatus() {
    var status = document.getElementById('lb-status');
    if (!status) return;
    status.hidden = true;
    status.textContent = '';
    status.classList.remove('lb-status-warn');
  }

  function warn(message) {
    if (typeof console !== 'undefined' && console.warn) console.warn('livebaton: ' + message);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The socket: Phoenix Channels V2 frames `[join_ref, ref, topic, event, payload]` over one WebSocket
  // ---------------------------------------------------------------------------------------------------------------

  var live = {
    topic: '',
    token: '',
    tabId: '',
    socket: null,
    ref: 0,
    joinRef: null, // the ref of the current join; frames of older joins are stale
    joined: false,
    everJoined: false, // "Reconnecting…" is only said after a first successful join
    stopped: false, // expired, gone, or refused: never reconnect
    leaving: false, // the page is being left: never reconnect
    replies: new Map(), // ref -> function (status, response) for pushes awaiting phx_reply
    channelRefs: new Set(), // refs of channel pushes, failed when the channel or socket goes away
    heartbeatTimer: null,
    heartbeatRef: null, // the unanswered heartbeat, if any
    reconnectTimer: null,
    reconnectAttempts: 0,
    rejoinTimer: null,
    rejoinAttempts: 0,
    signedOutReason: null, // closed as signed out: the one reconnect that follows decides
    probing: false, // a sign-in probe is in flight
  };

  function nextRef() {
    live.ref += 1;
    return String(live.ref);
  }

  function backoff(attempt) {
    var base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    // Up to 20% jitter so that many tabs dropped at once by a server restart do not come back in lockstep.
    return Math.round(base * (1 + Math.random() * 0.2));
  }

  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var meta = document.querySelector('meta[name="lb-connect"]');
    var params = meta ? meta.getAttribute('content') || '' : '';
    return scheme + '//' + location.host + SOCKET_PATH + '?vsn=' + PROTOCOL_VERSION + (params ? '&' + params : '');
  }

  function connect() {
    clearTimeout(live.reconnectTimer);
    live.reconnectTimer = null;
    if (live.stopped || live.leaving) return;
    setState(live.everJoined ? 'reconnecting' : 'connecting');
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      warn('cannot open the socket: ' + error);
      scheduleReconnect();
      return;
    }
    live.socket = socket;
    // Each handler first checks that its socket is still the current one: a socket given up on (heartbeat timeout)
    // may still report its close much later.
    var opened = false;
    socket.onopen = function () {
      if (socket !== live.socket) return;
      opened = true;
      startHeartbeat();
      join();
    };
    socket.onmessage = function (message) {
      if (socket !== live.socket) return;
      receive(message.data);
    };
    socket.onclose = function (event) {
      if (socket !== live.socket) return;
      if (event && event.code === 1001 && isSignedOutReason(event.reason)) {
        signedOutMaybe(event.reason);
      } else if (live.signedOutReason && !opened) {
        // The one reconnect after a sign-out was refused: this browser's sign-in is gone.
        signedOut(live.signedOutReason);
      } else {
        // Refused again and again (a WebSocket does not say why): the sign-in may have ended while the socket was
        // down. Ask the page itself once in a while.
        if (!opened && live.everJoined && live.reconnectAttempts >= 2) probeSignIn();
        socketLost();
      }
    };
    // An error is always followed by a close, which does the work.
    socket.onerror = function () {};
  }

  /** The socket closed or was given up on: fail what waits on it and come back with backoff. */
  function socketLost() {
    var socket = live.socket;
    live.socket = null;
    stopHeartbeat();
    clearTimeout(live.rejoinTimer);
    live.rejoinTimer = null;
    if (socket && socket.readyState < 2) socket.close();
    live.joined = false;
    failPending('disconnected', true);
    if (live.stopped || live.leaving) return;
    if (live.everJoined) {
      setState('reconnecting');
      showStatus('Reconnecting\u2026', { warn: true });
    }
    scheduleReconnect();
  }

  /** Whether a close reason says the user's sign-in ended (the server's `SIGNED_OUT` or `CREDENTIALS_REVOKED`). */
  function isSignedOutReason(reason) {
    return typeof reason === 'string' && (reason === 'signed out' || reason.indexOf('credentials revoked') === 0);
  }

  /**
   * The server closed the socket because the user signed out (on some device: the server closes all of the user's
   * sockets) or their password or role changed. This browser may still hold a valid sign-in (another device signed
   * out), so it reconnects once at once; only if that is refused does the page say it was signed out.
   */
  function signedOutMaybe(reason) {
    live.signedOutReason = reason;
    socketLost();
    clearTimeout(live.reconnectTimer);
    live.reconnectTimer = null;
    if (!live.stopped && !live.leaving) connect();
  }

  /**
   * Whether this browser is still signed in, asked of the page itself (HEAD, following redirects): a page that now
   * sends it to the app's sign-in page (`lb-sign-in`) means it was signed out while its socket was down (expired,
   * signed out elsewhere before the socket came back). A server that does not answer says nothing: keep reconnecting.
   */
  function probeSignIn() {
    var meta = document.querySelector('meta[name="lb-sign-in"]');
    if (!meta || live.probing || typeof fetch !== 'function') return;
    live.probing = true;
    var signIn = new URL(meta.getAttribute('content'), location.href).pathname;
    fetch(location.href, { method: 'HEAD', credentials: 'same-origin', cache: 'no-store' }).then(
      function (response) {
        live.probing = false;
        var landed = new URL(response.url, location.href).pathname;
        if (landed === signIn && !live.joined && !live.stopped) signedOut('signed out');
      },
      function () {
        live.probing = false;
      }
    );
  }

  /**
   * Signed out for good here: reconnecting cannot succeed, so the page says why and offers to sign in again, coming
   * back here. What a form held is kept by the server for its author (it is offered when they open the form again).
   */
  function signedOut(reason) {
    socketLost();
    live.stopped = true;
    clearTimeout(live.reconnectTimer);
    live.reconnectTimer = null;
    setState('signed-out');
    var root = document.getElementById('lb-root');
    var editing = !!(root && root.querySelector('form[data-lb-confirm-leave]'));
    var text = reason === 'signed out' ? 'You were signed out' : 'Your sign-in is no longer valid';
    text += editing ? ' \u2014 sign in again to save. Your unsaved changes are kept.' : ' \u2014 sign in again.';
    showStatus(text, { warn: true, signIn: true });
  }

  function scheduleReconnect() {
    if (live.stopped || live.leaving || live.reconnectTimer) return;
    var delay = backoff(live.reconnectAttempts);
    live.reconnectAttempts += 1;
    live.reconnectTimer = setTimeout(connect, delay);
  }

  /** Closes the socket for good (no reconnect). */
  function shutdown() {
    live.stopped = true;
    clearTimeout(live.reconnectTimer);
    clearTimeout(live.rejoinTimer);
    stopHeartbeat();
    var socket = live.socket;
    live.socket = null;
    live.joined = false;
    failPending('closed', true);
    if (socket && socket.readyState < 2) socket.close(1000);
  }

  function send(frame) {
    if (!live.socket || live.socket.readyState !== WebSocket.OPEN) return false;
    live.socket.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Pushes `event` on the view's channel; `onReply(status, response)` gets the phx_reply (or a local error
   * `{reason: "disconnected"}` when the socket or channel goes away first).
   */
  function push(event, payload, onReply) {
    var ref = nextRef();
    if (!send([live.joinRef, ref, live.topic, event, payload])) {
      if (onReply) onReply('error', { reason: 'disconnected' });
      return null;
    }
    live.channelRefs.add(ref);
    if (onReply) live.replies.set(ref, onReply);
    return ref;
  }

  /** Fails every channel push still waiting for a reply (and, with `all`, the heartbeat too). */
  function failPending(reason, all) {
    var waiting = [];
    live.channelRefs.forEach(function (ref) {
      var callback = live.replies.get(ref);
      live.replies.delete(ref);
      if (callback) waiting.push(callback);
    });
    live.channelRefs.clear();
    if (all) {
      live.replies.clear();
      live.heartbeatRef = null;
    }
    waiting.forEach(function (callback) {
      callback('error', { reason: reason });
    });
  }

  function receive(data) {
    var frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      warn('ignoring a frame that is not JSON');
      return;
    }
    if (!Array.isArray(frame) || frame.length < 5) return;
    var joinRef = frame[0];
    var ref = frame[1];
    var topic = frame[2];
    var event = frame[3];
    var payload = frame[4] || {};

    if (event === 'phx_reply') {
      var callback = ref !== null && live.replies.get(ref);
      if (callback) {
        live.replies.delete(ref);
        live.channelRefs.delete(ref);
        callback(payload.status, payload.response || {});
      }
      return;
    }
    // Only the current join of our topic: a phx_close for a join we replaced is not about us.
    if (topic !== live.topic || joinRef !== live.joinRef) return;
    if (event === 'diff') {
      if (live.joined) applyDiff(payload);
    } else if (event === 'phx_error') {
      channelCrashed();
    } else if (event === 'phx_close') {
      channelClosed();
    }
  }

  // --- Heartbeat ------------------------------------------------------------------------------------------------

  function heartbeatInterval() {
    var meta = document.querySelector('meta[name="lb-heartbeat-ms"]');
    var ms = meta ? parseInt(meta.getAttribute('content'), 10) : NaN;
    return ms >= 100 ? ms : HEARTBEAT_MS;
  }

  function startHeartbeat() {
    stopHeartbeat();
    live.heartbeatTimer = setInterval(beat, heartbeatInterval());
  }

  function stopHeartbeat() {
    clearInterval(live.heartbeatTimer);
    live.heartbeatTimer = null;
    live.heartbeatRef = null;
  }

  function beat() {
    if (live.heartbeatRef !== null) {
      // The last beat went unanswered for a whole interval: the connection is dead even if the socket does not know.
      warn('heartbeat timed out; reconnecting');
      socketLost();
      return;
    }
    var ref = nextRef();
    live.heartbeatRef = ref;
    live.replies.set(ref, function () {
      if (live.heartbeatRef === ref) live.heartbeatRef = null;
    });
    send([null, ref, 'phoenix', 'heartbeat', {}]);
  }

  // --- Joining the view -----------------------------------------------------------------------------------------

  function join() {
    clearTimeout(live.rejoinTimer);
    live.rejoinTimer = null;
    if (live.stopped || live.leaving) return;
    var ref = nextRef();
    live.joinRef = ref;
    live.replies.set(ref, function (status, response) {
      if (live.joinRef !== ref) return;
      if (status === 'ok') joined(response);
      else joinRefused(response);
    });
    send([ref, ref, live.topic, 'phx_join', { token: live.token, tab_id: live.tabId }]);
  }

  function joined(response) {
    // A rejoin (server restarted, view crashed, connection lost): before the fresh view's render replaces the page,
    // what the user typed is offered to it first, as LiveView's form recovery does.
    var captured = live.everJoined ? forms.captureForRecovery() : [];
    live.joined = true;
    live.everJoined = true;
    live.signedOutReason = null;
    live.reconnectAttempts = 0;
    live.rejoinAttempts = 0;
    if (captured.length === 0) {
      joinComplete(response, []);
      return;
    }
    var ref = live.joinRef;
    var replies = [];
    var waiting = captured.length;
    captured.forEach(function (saved, index) {
      push('event', { type: 'change', event: saved.event, value: saved.value }, function (status, reply) {
        if (status !== 'ok' && reply.reason === 'disconnected') return; // the page stays as it is until a rejoin
        replies[index] = status === 'ok' ? reply : null;
        if (status !== 'ok') eventRefused(reply);
        waiting -= 1;
        if (waiting === 0 && live.joined && live.joinRef === ref) joinComplete(response, replies);
      });
    });
  }

  /** Shows the joined view's render, then what the view answered to the recovered forms (same tick: no flicker). */
  function joinComplete(response, recovered) {
    hideStatus();
    applyDiff({
      regions: response.rendered && response.rendered.regions,
      title: response.title,
      flash: response.flash,
    });
    recovered.forEach(function (reply) {
      if (reply) applyDiff(reply);
    });
    if (live.leaving) return;
    setState('joined');
    // Edits made while disconnected (or whose reply the drop lost) are sent to the fresh view now.
    forms.flushUnsent();
  }

  function joinRefused(response) {
    var reason = (response && response.reason) || 'unknown error';
    live.joined = false;
    if (reason === 'redirect' && response.redirect && response.redirect.to) {
      shutdown();
      carryFlash(response.flash, response.redirect.to); // as applyDiff: the page load would drop it
      location.assign(response.redirect.to);
    } else if (reason === 'expired') {
      shutdown();
      setState('expired');
      showStatus('This page expired.', { warn: true, reload: true });
    } else if (reason === 'not_found') {
      shutdown();
      setState('error');
      showStatus('This page no longer exists.', { warn: true });
    } else if (isRetryable(reason)) {
      setState(live.everJoined ? 'reconnecting' : 'connecting');
      showStatus('This page is unavailable (' + reason + '). Retrying\u2026', { warn: true });
      scheduleRejoin();
    } else {
      shutdown();
      setState('error');
      showStatus('This page cannot be live: ' + reason + '.', { warn: true, reload: true });
    }
  }

  /** Refusals that a later attempt may get past: the view crashed, or a service it needs is down. */
  function isRetryable(reason) {
    return reason === 'view crashed' || /unavailable/.test(reason);
  }

  function scheduleRejoin() {
    if (live.stopped || live.leaving || live.rejoinTimer) return;
    var delay = backoff(live.rejoinAttempts);
    live.rejoinAttempts += 1;
    live.rejoinTimer = setTimeout(join, delay);
  }

  /** phx_error: the view's process died, or fell behind its broadcasts. Rejoin on the same socket with backoff. */
  function channelCrashed() {
    live.joined = false;
    failPending('view crashed', false);
    if (live.stopped || live.leaving) return;
    setState('reconnecting');
    showStatus('Reconnecting\u2026', { warn: true });
    scheduleRejoin();
  }

  /** phx_close not asked for: the server ended the view. Fighting it with rejoins would help no one. */
  function channelClosed() {
    live.joined = false;
    failPending('closed', false);
    if (live.leaving) return;
    shutdown();
    setState('error');
    showStatus('This page was closed by the server.', { warn: true, reload: true });
  }

  /**
   * Leaves the view, waits for the reply (at most LEAVE_WAIT_MS), then loads `url`. Leaving explicitly lets the
   * server release this tab's places at once instead of after a grace period.
   */
  function leaveAndGo(url) {
    if (live.leaving) return;
    live.leaving = true;
    var gone = false;
    function go() {
      if (gone) return;
      gone = true;
      shutdown();
      location.assign(url);
    }
    if (live.joined) {
      // Whatever is still in its debounce is sent first (same channel, so it is applied before the leave).
      forms.flushUnsent();
      live.joined = false;
      push('phx_leave', {}, go);
      setTimeout(go, LEAVE_WAIT_MS);
    } else {
      go();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Forms: debounced changes, submits, and which controls hold unacknowledged edits
  // ---------------------------------------------------------------------------------------------------------------

  var forms = (function () {
    // form -> {timer, target, targetElement, unsent, lastSent (the form's values last sent), submitting}
    var states = new WeakMap();
    // Forms with an edit not yet sent (kept strongly so a rejoin can find them; pruned once sent or gone).
    var unsentForms = new Set();
    // control -> {form, seq}: edits not yet acknowledged by a reply. Such controls keep their value in patches.
    var edits = new Map();
    var editSeq = 0;

    function stateOf(form) {
      var state = states.get(form);
      if (!state) {
        state = { timer: null, target: '', targetElement: null, unsent: false, lastSent: null, submitting: false };
        states.set(form, state);
      }
      return state;
    }

    function hasPendingEdit(control) {
      return edits.has(control);
    }

    /** Whether `form` holds a change the server has not acknowledged yet (in its debounce, or sent without a reply). */
    function hasUnsavedInput(form) {
      if (unsentForms.has(form)) return true;
      var pending = false;
      edits.forEach(function (edit) {
        if (edit.form === form) pending = true;
      });
      return pending;
    }

    /** Records an edit of `control`; a radio's edit also unchecks its group, so the whole group is marked. */
    function markEdited(form, control) {
      editSeq += 1;
      var marked = [control];
      if (control.type === 'radio' && control.name) {
        marked = Array.prototype.filter.call(form.elements, function (element) {
          return element.type === 'radio' && element.name === control.name;
        });
      }
      marked.forEach(function (element) {
        edits.set(element, { form: form, seq: editSeq });
      });
    }

    /** A reply came for the change sent at `seq`: edits up to it are the server's to render now. */
    function acknowledge(form, seq) {
      edits.forEach(function (edit, control) {
        if ((edit.form === form && edit.seq <= seq) || !control.isConnected) edits.delete(control);
      });
    }

    function forget(form) {
      edits.forEach(function (edit, control) {
        if (edit.form === form) edits.delete(control);
      });
    }

    /** The debounce of a control: its own phx-debounce, else its form's, else the default; 'blur' or a number. */
    function debounceOf(control, form) {
      var raw = control.getAttribute('phx-debounce');
      if (raw === null) raw = form.getAttribute('phx-debounce');
      if (raw === null || raw === '') return DEFAULT_DEBOUNCE_MS;
      if (raw.trim().toLowerCase() === 'blur') return 'blur';
      var ms = parseInt(raw, 10);
      return isNaN(ms) || ms < 0 ? DEFAULT_DEBOUNCE_MS : ms;
    }

    /** Text-like controls fire `change` only when committed (blur, Enter); others fire it with every edit. */
    function commitsOnChange(control) {
      if (control.localName === 'textarea') return true;
      if (control.localName !== 'input') return false;
      var type = control.type;
      return ['checkbox', 'radio', 'file', 'range', 'color'].indexOf(type) === -1;
    }

    /** Whether the user can edit `control` at all (a spectator's disabled or read-only form sends nothing). */
    function editable(control) {
      if (!control || !control.isConnected) return false;
      if (matchesSafely(control, ':disabled')) return false;
      if (control.readOnly) return false;
      return !control.closest('[inert]');
    }

    /** `input` and `change` events inside a phx-change form. */
    function onEdit(event) {
      var control = event.target;
      var form = control && control.form;
      if (!form || !form.hasAttribute('phx-change') || !inRoot(form)) return;
      if (!editable(control)) return;
      var state = stateOf(form);
      var textLike = commitsOnChange(control);
      if (event.type === 'change' && textLike) {
        // A commit (blur, Enter) of what `input` events already scheduled or sent: send now if anything is new.
        if (state.unsent || serialize(form, '') !== state.lastSent) {
          markEdited(form, control);
          setTarget(state, control);
          state.unsent = true;
          unsentForms.add(form);
          flush(form);
        }
        return;
      }
      if (event.type === 'change' && state.unsent && state.targetElement === control) {
        return; // the `input` event of this same edit scheduled it already
      }
      markEdited(form, control);
      setTarget(state, control);
      state.unsent = true;
      unsentForms.add(form);
      var debounce = debounceOf(control, form);
      clearTimeout(state.timer);
      state.timer = null;
      if (debounce === 'blur' && textLike) return; // the `change` on blur sends it
      state.timer = setTimeout(
        function () {
          flush(form);
        },
        debounce === 'blur' ? 0 : debounce
      );
    }

    /** Leaving a control sends its pending edit now (phx-debounce="blur" relies on this when `change` does not fire). */
    function onLeave(event) {
      var control = event.target;
      var form = control && control.form;
      if (!form || !form.hasAttribute('phx-change')) return;
      var state = states.get(form);
      if (state && state.unsent && state.targetElement === control) flush(form);
    }

    function setTarget(state, control) {
      state.target = control.name || '';
      state.targetElement = control;
    }

    /** The form as a URL-encoded string, with `_target` naming the control that changed. */
    function serialize(form, target, submitter) {
      var data;
      try {
        data = submitter ? new FormData(form, submitter) : new FormData(form);
      } catch (error) {
        data = new FormData(form); // a submitter that is not a submit button of this form
      }
      var params = new URLSearchParams(data);
      if (target) params.append('_target', target);
      return params.toString();
    }

    /** Sends the form's pending change now (if any). */
    function flush(form) {
      var state = stateOf(form);
      clearTimeout(state.timer);
      state.timer = null;
      if (!state.unsent) return;
      if (!form.isConnected || !form.hasAttribute('phx-change') || !editable(state.targetElement)) {
        // The form went away, or the server made the control read-only meanwhile: the edit cannot stand.
        state.unsent = false;
        unsentForms.delete(form);
        forget(form);
        return;
      }
      if (!live.joined) return; // stays unsent; joined() flushes it
      var value = serialize(form, state.target);
      var seq = editSeq;
      state.unsent = false;
      state.lastSent = serialize(form, ''); // what the server has, to tell whether a later commit adds anything
      unsentForms.delete(form);
      push('event', { type: 'change', event: form.getAttribute('phx-change'), value: value }, function (status, response) {
        if (status === 'ok') {
          acknowledge(form, seq);
          applyDiff(response);
        } else if (response.reason === 'disconnected' || response.reason === 'view crashed') {
          // The server never handled it: send it again once rejoined.
          state.unsent = true;
          unsentForms.add(form);
        } else {
          acknowledge(form, seq);
          eventRefused(response);
        }
      });
    }

    /**
     * Form recovery: the values of every form in the page the user can edit (an `id`, a `phx-change`, and a control
     * that is not disabled), each with the event that offers them to a fresh view: `phx-auto-recover`, else
     * `phx-change`. `phx-auto-recover="ignore"` opts a form out. The view decides what to keep (a collaborative form
     * keeps them only while no newer draft exists).
     */
    function captureForRecovery() {
      var root = document.getElementById('lb-root');
      if (!root) return [];
      var captured = [];
      Array.prototype.forEach.call(root.querySelectorAll('form[phx-change][id]'), function (form) {
        var event = form.getAttribute('phx-auto-recover') || form.getAttribute('phx-change');
        if (!event || event === 'ignore') return;
        var editableControl = function (control) {
          return control.type !== 'hidden' && editable(control);
        };
        if (!Array.prototype.some.call(form.elements, editableControl)) return;
        captured.push({ event: event, value: serialize(form, '') });
      });
      return captured;
    }

    function flushUnsent() {
      Array.from(unsentForms).forEach(function (form) {
        if (!form.isConnected) unsentForms.delete(form);
        else flush(form);
      });
    }

    /** `submit` of a phx-submit form. */
    function onSubmit(event) {
      var form = event.target;
      if (!form || !form.hasAttribute || !form.hasAttribute('phx-submit') || !inRoot(form)) return;
      // The page is live: never let the browser post the form itself.
      event.preventDefault();
      var state = stateOf(form);
      if (state.submitting) return;
      if (!live.joined) {
        // Nothing is sent while offline, and nothing typed is lost: say so where the eyes are.
        saveStatus(form, 'offline', 'Not saved: offline. Your changes are kept on this page; save again once reconnected.');
        return;
      }
      if (state.unsent && form.hasAttribute('phx-change')) flush(form);
      var value = serialize(form, '', event.submitter);
      var buttons = lockForm(form, state);
      saveStatus(form, 'saving', 'Saving\u2026');
      push('event', { type: 'submit', event: form.getAttribute('phx-submit'), value: value }, function (status, response) {
        if (status === 'ok') {
          forcedForm = form;
          try {
            applyDiff(response);
          } finally {
            forcedForm = null;
          }
          if (response.flash && response.flash.error) focusAfterFailure(form);
        } else if (response.reason === 'disconnected') {
          saveStatus(form, 'offline', 'Not saved: the connection dropped. Your changes are kept; save again once reconnected.');
        } else {
          eventRefused(response);
        }
        unlockForm(form, state, buttons);
      });
    }

    /** Sets the text of the form's save status (`.save-status`, a live region), if it has one. */
    function saveStatus(form, state, text) {
      var status = form.querySelector('.save-status');
      if (!status) return;
      status.dataset.status = state;
      status.textContent = text;
    }

    /**
     * After a save failed, moves focus where the eyes must go: the element the server marked (`data-lb-focus`, the
     * conflict panel), else the first invalid field, else the save status.
     */
    function focusAfterFailure(form) {
      var root = document.getElementById('lb-root');
      var target =
        (root && root.querySelector('[data-lb-focus]')) ||
        form.querySelector('[aria-invalid="true"]') ||
        form.querySelector('.save-status');
      if (!target) return;
      if (!target.hasAttribute('tabindex') && !/^(input|select|textarea|button|a)$/.test(target.localName)) {
        target.setAttribute('tabindex', '-1');
      }
      target.focus();
    }

    /** Ctrl+S or Cmd+S: saves the form being edited (or the page's only live form) instead of saving the page. */
    function onKeydown(event) {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || (event.key || '').toLowerCase() !== 's') return;
      var root = document.getElementById('lb-root');
      if (!root) return;
      var active = document.activeElement;
      var form = active && active.closest ? active.closest('form[phx-submit]') : null;
      if (!form || !inRoot(form)) {
        var forms = root.querySelectorAll('form[phx-submit]');
        form = forms.length === 1 ? forms[0] : null;
      }
      if (!form) return;
      event.preventDefault();
      // A read-only form (a spectator's: its fieldset and Save are disabled) has nothing to save.
      var save = form.querySelector('button[type="submit"], button:not([type]), input[type="submit"]');
      if (!save || save.disabled) return;
      if (typeof form.requestSubmit === 'function') form.requestSubmit();
      else form.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
    }

    /** Marks a submitting form busy and disables its enabled submit buttons (against double submits). */
    function lockForm(form, state) {
      state.submitting = true;
      form.setAttribute('aria-busy', 'true');
      var buttons = Array.prototype.filter.call(form.elements, function (element) {
        var submits =
          (element.localName === 'button' && (element.getAttribute('type') || 'submit').toLowerCase() === 'submit') ||
          (element.localName === 'input' && /^(submit|image)$/i.test(element.type));
        return submits && !element.disabled;
      });
      buttons.forEach(function (button) {
        button.disabled = true;
        button.setAttribute(BUSY_MARK, '');
      });
      return buttons;
    }

    /**
     * Undoes lockForm. A button the patch morphed lost the marker (the server's markup does not have it) and has the
     * server's `disabled` already; a replaced one is gone. Only buttons still marked are re-enabled.
     */
    function unlockForm(form, state, buttons) {
      state.submitting = false;
      form.removeAttribute('aria-busy');
      buttons.forEach(function (button) {
        if (button.isConnected && button.hasAttribute(BUSY_MARK)) {
          button.removeAttribute(BUSY_MARK);
          button.disabled = false;
        }
      });
    }

    return {
      onEdit: onEdit,
      onLeave: onLeave,
      onSubmit: onSubmit,
      onKeydown: onKeydown,
      hasPendingEdit: hasPendingEdit,
      hasUnsavedInput: hasUnsavedInput,
      captureForRecovery: captureForRecovery,
      flushUnsent: flushUnsent,
    };
  })();

  /** An event reply with status error: `{reason, message?}`. A message is meant for the user. */
  function eventRefused(response) {
    warn('event refused: ' + (response && response.reason));
    if (response && response.message) showFlash({ error: response.message });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Rich-text editor
  //
  // A small WYSIWYG editor over a plain <textarea>, so that a form (live or not) sends rich text like any other value.
  // The markup (livebaton_web::live::RichTextEditor renders it; docs/guide.md describes it for other templates):
  //
  //   <div class="lb-rich" data-lb-rich>
  //     <div role="toolbar" aria-label="Formatting" aria-controls="ID-area" data-lb-ignore>
  //       <button type="button" data-lb-command="bold" aria-label="Bold" aria-pressed="false">B</button> …
  //     </div>
  //     <div id="ID-area" role="textbox" aria-multiline="true" aria-labelledby="LABEL" tabindex="0"
  //          data-lb-ignore="contenteditable aria-readonly"></div>
  //     <textarea id="ID" name="NAME">HTML</textarea>
  //   </div>
  //
  // - The textarea is the value. Without JavaScript it is all there is (the stylesheet shows the toolbar and the area
  //   only under html.lb-js, which boot sets). With it, every edit of the area writes the area's cleaned HTML into the
  //   textarea and dispatches `input` there (and `change` when the area loses focus), so the forms code sends it with
  //   its debounce and protects it while unacknowledged, exactly as if it had been typed into the textarea.
  // - The area's children belong to this code (data-lb-ignore: the morph leaves them, and the attributes it names,
  //   alone). After every morph, refresh() re-renders an area whose textarea got a new value from the server (a
  //   spectator following the owner, a reload, a conflict resolved), always through clean(): markup from anywhere is
  //   parsed by an inert <template> and rebuilt from the allow-list, never inserted as it came.
  // - A disabled (a spectator's fieldset) or read-only textarea makes the area read-only and the toolbar disabled;
  //   refresh() follows the server's changes of that too (promotion, demotion).
  // - The allow-list is a subset of what the server's sanitiser keeps (livebaton-content's rich_text): p, br, b,
  //   strong, i, em, a (href: http, https, mailto or relative; nothing else), h2, h3, ul, ol, li, blockquote. Headings
  //   are h2 and h3 because the page around the text owns h1 (its title): h1 becomes h2, h4–h6 become h3. Other
  //   elements are unwrapped to their content, except those whose content is not text for a reader (script, style, …),
  //   which are dropped. The server still sanitises everything: this cleaning is for what the user sees, not security.
  // ---------------------------------------------------------------------------------------------------------------

  var richText = (function () {
    var ALLOWED = { p: 1, br: 1, b: 1, strong: 1, i: 1, em: 1, a: 1, h2: 1, h3: 1, ul: 1, ol: 1, li: 1, blockquote: 1 };
    var RENAMED = { h1: 'h2', h4: 'h3', h5: 'h3', h6: 'h3' };
    var INLINE = { br: 1, b: 1, strong: 1, i: 1, em: 1, a: 1 };
    // Containers of inline content only: a block inside one would not survive a reparse where it was put.
    var INLINE_ONLY = { p: 1, h2: 1, h3: 1, b: 1, strong: 1, i: 1, em: 1, a: 1 };
    // Dropped with their content: what they hold is code, styling or a control, not text a reader wrote.
    var DROPPED = {
      script: 1, style: 1, template: 1, noscript: 1, iframe: 1, frame: 1, frameset: 1, object: 1, embed: 1, svg: 1,
      math: 1, head: 1, title: 1, meta: 1, link: 1, video: 1, audio: 1, canvas: 1, select: 1, textarea: 1, input: 1,
      button: 1,
    };
    // Unknown blocks (a pasted <div>, a table cell) start a new paragraph instead of running into their neighbours.
    var BREAKING = {
      div: 1, section: 1, article: 1, header: 1, footer: 1, main: 1, aside: 1, nav: 1, address: 1, figure: 1,
      figcaption: 1, pre: 1, dd: 1, dt: 1, td: 1, th: 1, caption: 1, details: 1, summary: 1, center: 1, tr: 1,
    };
    // As deep as the server's sanitiser allows; deeper content is kept as text (and the walk stays bounded).
    var MAX_DEPTH = 32;
    var LINK_PROMPT = 'Link address (https://…, mailto:… or a path on this site). Leave empty to remove the link.';
    var LINK_REFUSED = 'Only http, https and mailto links, or paths on this site, can be added.';
    var HTML_NS = 'http://www.w3.org/1999/xhtml';

    // area -> {wrapper, area, source, toolbar, seen (the textarea value last shown), dirty (edited since focus), range}
    var editors = new WeakMap();

    // --- Cleaning ---------------------------------------------------------------------------------------------------

    /**
     * `html` parsed by an inert <template> (no script runs, nothing loads). Chromium checks inline handlers against
     * the page's Content-Security-Policy as it parses them and reports each one as a violation, although none could
     * ever run: so handler attributes are renamed first (clean() drops every attribute but href anyway).
     */
    function parseInert(html) {
      var template = document.createElement('template');
      template.innerHTML = renameHandlers(String(html));
      return template.content;
    }

    // A start tag, its quoted values read whole (a `>` inside one does not end it). Nothing it matches crosses a `<`,
    // so every attempt ends at the next one and a hostile value costs linear time (a tag with a `<` in it is left
    // as it is: at worst, a report).
    var START_TAG = /<[a-z](?:"[^"<]*"|'[^'<]*'|[^"'<>])*>/gi;
    // In a start tag: a value (kept as it is), or an attribute name starting with "on" (renamed).
    var HANDLER_NAME = /("[^"]*"|'[^']*'|=\s*[^\s"'>]+)|([\s/])(on[a-z])/gi;

    /** Renames the on* attributes of every start tag in `html`, to data-lb-x-on*; text and values stay as they are. */
    function renameHandlers(html) {
      return html.replace(START_TAG, function (tag) {
        return tag.replace(HANDLER_NAME, function (all, value, before, name) {
          return value ? value : before + 'data-lb-x-' + name;
        });
      });
    }

    /**
     * The allowed content of `source`'s children, rebuilt as new nodes in a fragment. Inline content at the top is
     * gathered into <p>: a stored document is a list of blocks.
     */
    function clean(source) {
      var fragment = document.createDocumentFragment();
      // `run`: the paragraph that inline content at the top goes into, until a block ends it.
      // `breakAfter`: the container whose next content starts on a new line (see unwrap).
      var context = { root: fragment, run: null, breakAfter: null };
      cleanChildren(source, fragment, context, 0);
      return fragment;
    }

    /** Cleaned HTML of `source`'s children as stored: '' when there is no text at all (an empty editor). */
    function cleanHtml(source) {
      var holder = document.createElement('div');
      holder.appendChild(clean(source));
      return holder.textContent.trim() === '' ? '' : holder.innerHTML;
    }

    function cleanChildren(source, target, context, depth) {
      for (var node = source.firstChild; node; node = node.nextSibling) cleanNode(node, target, context, depth);
    }

    function cleanNode(node, target, context, depth) {
      if (node.nodeType === Node.TEXT_NODE) {
        appendText(node.nodeValue, target, context);
        return;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) return; // comments, processing instructions
      var name = node.namespaceURI === HTML_NS ? node.localName : 'svg';
      if (DROPPED[name]) return;
      if (depth >= MAX_DEPTH) {
        appendText(node.textContent, target, context);
        return;
      }
      var tag = RENAMED[name] || name;
      var href = tag === 'a' ? safeHref(node.getAttribute('href')) : null;
      if (!ALLOWED[tag] || (tag === 'a' && (href === null || within(target, 'a'))) || !fits(tag, target)) {
        unwrap(node, target, context, depth, isBlock(name));
        return;
      }
      // A paragraph or heading holding blocks (Chromium makes <p><ul>…</ul></p> of a list in a paragraph) would not
      // survive a reparse: its blocks take its place.
      if (INLINE_ONLY[tag] && !INLINE[tag] && hasBlockChild(node)) {
        unwrap(node, target, context, depth, true);
        return;
      }
      var element = document.createElement(tag);
      if (href !== null) element.setAttribute('href', href);
      if (target === context.root && INLINE[tag]) appendInline(element, context);
      else appendTo(target, element, context);
      cleanChildren(node, element, context, depth + 1);
      // Formatting with nothing inside is noise (a pasted <b></b>); an empty paragraph is a blank line the author made.
      if (INLINE[tag] && tag !== 'br' && !element.firstChild) element.remove();
      // A <br> ending a block after other content is the browser's placeholder: it shows nothing.
      var last = element.lastChild;
      if (!INLINE[tag] && last && last.localName === 'br' && last.previousSibling) last.remove();
    }

    /**
     * An element that is not kept: its content goes where it was. A block-like one (a <div>, or a heading inside a
     * paragraph) first ends the line it interrupts, so its text does not run into its neighbour's.
     */
    function unwrap(node, target, context, depth, breaks) {
      if (breaks) lineBreak(target, context);
      cleanChildren(node, target, context, depth + 1);
      // The line ends after it only if something follows there (a trailing <br> would be noise).
      if (breaks && target === context.root) context.run = null;
      else if (breaks) context.breakAfter = target;
    }

    /** Before content goes into `target`: the line break an unwrapped block left there, if it is still wanted. */
    function settle(target, context) {
      var pending = context.breakAfter;
      context.breakAfter = null;
      if (pending === target) lineBreak(target, context);
    }

    function lineBreak(target, context) {
      if (target === context.root) {
        context.run = null; // the next inline content opens a new paragraph
      } else if (INLINE_ONLY[target.localName] && target.lastChild && target.lastChild.localName !== 'br') {
        target.appendChild(document.createElement('br'));
      }
    }

    /** Whether an element named `name` (in the source) makes a block of its own. */
    function isBlock(name) {
      var tag = RENAMED[name] || name;
      return !!(BREAKING[name] || (ALLOWED[tag] && !INLINE[tag]));
    }

    function hasBlockChild(node) {
      for (var child = node.firstElementChild; child; child = child.nextElementSibling) {
        if (isBlock(child.localName)) return true;
      }
      return false;
    }

    /** Whether an element `tag` may go into `target` without the parser moving it elsewhere on a reparse. */
    function fits(tag, target) {
      var container = target.localName;
      if (tag === 'li') return container === 'ul' || container === 'ol';
      if (INLINE_ONLY[container]) return !!INLINE[tag];
      return true;
    }

    function within(element, tag) {
      return !!(element.closest && element.closest(tag));
    }

    function appendText(text, target, context) {
      if (!text) return;
      // Browsers type no-break spaces to keep a trailing or doubled space visible while editing; stored text has
      // plain ones (what an author means by a space).
      text = text.replace(/\u00a0/g, ' ');
      var container = target.localName;
      // Whitespace between list items or between top-level blocks is source formatting, not content.
      var betweenBlocks = target === context.root && !context.run;
      if ((container === 'ul' || container === 'ol' || betweenBlocks) && !text.trim()) {
        return;
      }
      var node = document.createTextNode(text);
      if (target === context.root) appendInline(node, context);
      else appendTo(target, node, context);
    }

    /** Appends to `target`; content that lands in a list but is not an item gets an item of its own. */
    function appendTo(target, node, context) {
      settle(target, context);
      var container = target.localName;
      if ((container === 'ul' || container === 'ol') && node.localName !== 'li') {
        var item = target.lastChild && target.lastChild.__lbLoose ? target.lastChild : null;
        if (!item) {
          item = document.createElement('li');
          item.__lbLoose = true;
          target.appendChild(item);
        }
        item.appendChild(node);
        return;
      }
      target.appendChild(node);
      if (target === context.root && node.nodeType === Node.ELEMENT_NODE && !INLINE[node.localName]) context.run = null;
    }

    /** Inline content at the top: into the open paragraph, or a new one. */
    function appendInline(node, context) {
      settle(context.root, context);
      if (!context.run) {
        context.run = document.createElement('p');
        context.root.appendChild(context.run);
      }
      context.run.appendChild(node);
    }

    /**
     * `value` as a link target if it is one we keep: http, https or mailto, or a relative reference (no scheme). The
     * scheme is read as a browser reads it, ignoring control characters and spaces ("java\tscript:"). Null: refused.
     */
    function safeHref(value) {
      if (value === null || value === undefined) return null;
      var href = String(value).trim();
      if (!href || href.length > 2048) return null;
      var compact = href.replace(/[\u0000-\u0020\u007f]/g, '');
      var scheme = /^([a-z][a-z0-9+.-]*):/i.exec(compact);
      if (scheme) return /^(https?|mailto)$/i.test(scheme[1]) ? href : null;
      // No scheme, yet a colon before the path: something a browser might read as one. Refuse rather than guess.
      var colon = compact.indexOf(':');
      var path = compact.search(/[/?#]/);
      return colon !== -1 && (path === -1 || colon < path) ? null : href;
    }

    // --- Setting editors up and keeping them in step with the server ------------------------------------------------

    /** The parts of an editor's markup, or null when something is missing. */
    function partsOf(wrapper) {
      var area = wrapper.querySelector('[role="textbox"]');
      var source = wrapper.querySelector('textarea');
      if (!area || !source) return null;
      return { wrapper: wrapper, area: area, source: source, toolbar: wrapper.querySelector('[role="toolbar"]') };
    }

    /** Sets up or updates every editor in `scope` (an element or the document). Called at boot and after a morph. */
    function refresh(scope) {
      if (!scope || !scope.querySelectorAll) return;
      var wrappers = Array.prototype.slice.call(scope.querySelectorAll('[data-lb-rich]'));
      if (scope.nodeType === Node.ELEMENT_NODE) {
        var around = scope.closest('[data-lb-rich]');
        if (around) wrappers.unshift(around);
      }
      wrappers.forEach(sync);
    }

    function sync(wrapper) {
      var parts = partsOf(wrapper);
      if (!parts) return;
      var editor = editors.get(parts.area);
      if (!editor || editor.source !== parts.source || editor.toolbar !== parts.toolbar) editor = setUp(parts);
      applyReadOnly(editor);
      if (editor.source.value !== editor.seen) render(editor);
    }

    function setUp(parts) {
      var editor = {
        wrapper: parts.wrapper,
        area: parts.area,
        source: parts.source,
        toolbar: parts.toolbar,
        seen: null,
        dirty: false,
        range: null,
        dragging: false,
      };
      var fresh = !editors.has(parts.area);
      editors.set(parts.area, editor);
      if (fresh) listenToArea(editor);
      if (editor.toolbar) setUpToolbar(editor);
      return editor;
    }

    function listenToArea(editor) {
      var area = editor.area;
      // The handlers look the editor up: a morph may give the same area a new textarea or toolbar.
      var current = function () {
        return editors.get(area);
      };
      area.addEventListener('input', function () {
        commit(current());
      });
      area.addEventListener('focusout', function () {
        // The selection is still the area's now (selectionchange, which also saves it, may not have run yet): a
        // toolbar button puts it back.
        saveRange(current());
        committed(current());
      });
      area.addEventListener('keydown', function (event) {
        shortcut(current(), event);
      });
      area.addEventListener('paste', function (event) {
        paste(current(), event);
      });
      area.addEventListener('dragstart', function () {
        current().dragging = true;
      });
      area.addEventListener('dragend', function () {
        current().dragging = false;
      });
      area.addEventListener('drop', function (event) {
        drop(current(), event);
      });
    }

    /** Shows the textarea's value in the area (unless the area shows that content already: the caret stays). */
    function render(editor) {
      var value = editor.source.value;
      editor.seen = value;
      var wanted = clean(parseInert(value));
      var holder = document.createElement('div');
      holder.appendChild(wanted.cloneNode(true));
      if (holder.innerHTML === cleanHtml(editor.area) || (holder.textContent.trim() === '' && !cleanHtml(editor.area))) {
        return;
      }
      var focused = document.activeElement === editor.area;
      editor.area.replaceChildren(wanted);
      editor.range = null;
      if (focused) caretToEnd(editor.area);
    }

    function caretToEnd(area) {
      var selection = window.getSelection();
      if (!selection) return;
      var range = document.createRange();
      range.selectNodeContents(area);
      range.collapse(false);
      selection.removeAllRanges();
      selection.addRange(range);
    }

    /** A disabled or read-only textarea (a spectator's form) makes the whole editor read-only. */
    function readOnly(editor) {
      return matchesSafely(editor.source, ':disabled') || editor.source.readOnly;
    }

    function applyReadOnly(editor) {
      var locked = readOnly(editor);
      var editable = locked ? 'false' : 'true';
      if (editor.area.getAttribute('contenteditable') !== editable) editor.area.setAttribute('contenteditable', editable);
      if (locked && editor.area.getAttribute('aria-readonly') !== 'true') editor.area.setAttribute('aria-readonly', 'true');
      if (!locked && editor.area.hasAttribute('aria-readonly')) editor.area.removeAttribute('aria-readonly');
      buttonsOf(editor).forEach(function (button) {
        if (button.disabled !== locked) button.disabled = locked;
      });
      if (editor.toolbar) rovingStop(editor);
    }

    // --- Editing ----------------------------------------------------------------------------------------------------

    /** The area changed: its cleaned HTML becomes the textarea's value, sent like any typed value. */
    function commit(editor) {
      if (!editor) return;
      updatePressed(editor);
      if (readOnly(editor)) return;
      var html = cleanHtml(editor.area);
      if (html === editor.source.value) return;
      editor.source.value = html;
      editor.seen = html;
      editor.dirty = true;
      editor.source.dispatchEvent(new Event('input', { bubbles: true }));
    }

    /** The area lost focus after edits: a `change`, as a textarea gives on blur, so the edit is sent now. */
    function committed(editor) {
      if (!editor || !editor.dirty) return;
      editor.dirty = false;
      editor.source.dispatchEvent(new Event('change', { bubbles: true }));
    }

    /** Ctrl/Cmd+B, +I, +K. Anything else (Ctrl/Cmd+S included) goes on to the document's handlers. */
    function shortcut(editor, event) {
      if (!editor || !(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
      var command = { b: 'bold', i: 'italic', k: 'link' }[(event.key || '').toLowerCase()];
      if (!command) return;
      event.preventDefault();
      run(editor, command);
    }

    /** Runs a toolbar command on the area's selection. */
    function run(editor, command) {
      if (readOnly(editor)) return;
      focusArea(editor);
      if (command === 'bold' || command === 'italic') exec(command);
      else if (command === 'h2' || command === 'h3') toggleBlock(editor, command);
      else if (command === 'quote') toggleBlock(editor, 'blockquote');
      else if (command === 'ul') exec('insertUnorderedList');
      else if (command === 'ol') exec('insertOrderedList');
      else if (command === 'link') link(editor);
      // execCommand fires `input` itself; this catches what it did not change through it.
      commit(editor);
    }

    /**
     * execCommand is deprecated but is still the one way to edit with the browser's own undo history, and what every
     * small editor uses; every result goes through clean() before it leaves the area anyway.
     */
    function exec(command, value) {
      try {
        return document.execCommand(command, false, value === undefined ? null : value);
      } catch (error) {
        return false;
      }
    }

    /** Focuses the area and puts back the selection it had (a toolbar button took the focus). */
    function focusArea(editor) {
      var selection = window.getSelection();
      var inside = selection && selection.rangeCount && editor.area.contains(selection.getRangeAt(0).commonAncestorContainer);
      if (document.activeElement !== editor.area) editor.area.focus({ preventScroll: true });
      if (inside || !selection) return;
      if (editor.range && editor.area.contains(editor.range.commonAncestorContainer)) {
        selection.removeAllRanges();
        selection.addRange(editor.range);
      } else {
        caretToEnd(editor.area);
      }
    }

    /** A heading or quote button: makes the current block one, or a paragraph again when it is one already. */
    function toggleBlock(editor, tag) {
      var current = selectionAncestor(editor, tag);
      exec('formatBlock', current ? 'p' : tag);
      // A quote holding paragraphs (pasted) is not undone by formatBlock: take its content out of it.
      var still = tag === 'blockquote' && current && current.isConnected ? current : null;
      if (still) still.replaceWith.apply(still, Array.prototype.slice.call(still.childNodes));
    }

    function selectionAncestor(editor, tag) {
      var selection = window.getSelection();
      if (!selection || !selection.rangeCount) return null;
      var node = selection.getRangeAt(0).startContainer;
      var element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
      var found = element ? element.closest(tag) : null;
      return found && editor.area.contains(found) && found !== editor.area ? found : null;
    }

    /** Asks for the address; adds, changes or (empty answer) removes the link. Only safeHref's addresses are kept. */
    function link(editor) {
      var current = selectionAncestor(editor, 'a');
      var saved = editor.range;
      var answer = window.prompt(LINK_PROMPT, current ? current.getAttribute('href') || '' : 'https://');
      editor.range = saved;
      focusArea(editor);
      if (answer === null) return;
      if (answer.trim() === '' || answer.trim() === 'https://') {
        if (current) exec('unlink');
        return;
      }
      var href = safeHref(answer);
      if (href === null) {
        window.alert(LINK_REFUSED);
        return;
      }
      var selection = window.getSelection();
      if (selection && selection.isCollapsed && !current) {
        exec('insertHTML', '<a href="' + escapeHtml(href) + '">' + escapeHtml(href) + '</a>');
      } else {
        exec('createLink', href);
      }
    }

    function escapeHtml(text) {
      return String(text).replace(/[&<>"']/g, function (character) {
        return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[character];
      });
    }

    /** Pasted content is cleaned to the allow-list before it enters the area; plain text becomes paragraphs. */
    function paste(editor, event) {
      if (!editor || readOnly(editor) || !event.clipboardData) return;
      event.preventDefault();
      insertClean(event.clipboardData);
    }

    /** A drop from outside the area is cleaned like a paste; a move inside it is the browser's. */
    function drop(editor, event) {
      if (!editor || editor.dragging || !event.dataTransfer) return;
      event.preventDefault();
      if (readOnly(editor)) return;
      var range = document.caretRangeFromPoint ? document.caretRangeFromPoint(event.clientX, event.clientY) : null;
      editor.area.focus({ preventScroll: true });
      if (range && editor.area.contains(range.startContainer)) {
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      insertClean(event.dataTransfer);
    }

    function insertClean(data) {
      var html = data.getData('text/html');
      var text = data.getData('text/plain');
      if (html) {
        // Blocks stay blocks (a pasted <div> is a paragraph); a single paragraph goes in inline, where the caret is.
        var holder = document.createElement('div');
        holder.appendChild(clean(parseInert(html)));
        var only = holder.childNodes.length === 1 && holder.firstChild.localName === 'p' ? holder.firstChild : null;
        var markup = only ? only.innerHTML : holder.innerHTML;
        if (markup) exec('insertHTML', markup);
      } else if (text) {
        exec('insertHTML', plainTextHtml(text));
      }
    }

    /** Plain text as HTML: blank lines separate paragraphs, single line breaks stay line breaks. One line stays inline. */
    function plainTextHtml(text) {
      var normalised = String(text).replace(/\r\n?/g, '\n');
      if (normalised.indexOf('\n') === -1) return escapeHtml(normalised);
      return normalised
        .split(/\n\s*\n/)
        .filter(function (paragraph) {
          return paragraph.trim() !== '';
        })
        .map(function (paragraph) {
          return '<p>' + escapeHtml(paragraph).replace(/\n/g, '<br>') + '</p>';
        })
        .join('');
    }

    // --- Toolbar ----------------------------------------------------------------------------------------------------

    function buttonsOf(editor) {
      if (!editor.toolbar) return [];
      return Array.prototype.slice.call(editor.toolbar.querySelectorAll('button[data-lb-command]'));
    }

    /**
     * The toolbar is one Tab stop (roving tabindex, the ARIA toolbar pattern): arrows, Home and End move between its
     * buttons, Escape goes back to the text. A button does its command and gives the focus back to the text, with the
     * selection it had, so typing goes on in the new format.
     */
    function setUpToolbar(editor) {
      var toolbar = editor.toolbar;
      if (toolbar.__lbEditorArea === editor.area) return;
      var fresh = !toolbar.__lbEditorArea;
      toolbar.__lbEditorArea = editor.area;
      rovingStop(editor);
      if (!fresh) return;
      var current = function () {
        return editors.get(toolbar.__lbEditorArea);
      };
      // Pressing a button must not take the focus (and with it the selection) away from the text.
      toolbar.addEventListener('mousedown', function (event) {
        if (closestElement(event.target, 'button[data-lb-command]')) event.preventDefault();
      });
      toolbar.addEventListener('click', function (event) {
        var button = closestElement(event.target, 'button[data-lb-command]');
        var editor = current();
        if (!button || !editor || button.disabled) return;
        event.preventDefault();
        setRovingStop(editor, button);
        run(editor, button.getAttribute('data-lb-command'));
      });
      toolbar.addEventListener('keydown', function (event) {
        toolbarKey(current(), event);
      });
    }

    function toolbarKey(editor, event) {
      if (!editor) return;
      var buttons = buttonsOf(editor).filter(function (button) {
        return !button.disabled;
      });
      var at = buttons.indexOf(document.activeElement);
      if (at === -1) return;
      var next = null;
      if (event.key === 'ArrowRight' || event.key === 'ArrowDown') next = buttons[(at + 1) % buttons.length];
      else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') next = buttons[(at - 1 + buttons.length) % buttons.length];
      else if (event.key === 'Home') next = buttons[0];
      else if (event.key === 'End') next = buttons[buttons.length - 1];
      else if (event.key === 'Escape') {
        event.preventDefault();
        focusArea(editor);
        return;
      }
      if (!next) return;
      event.preventDefault();
      setRovingStop(editor, next);
      next.focus();
    }

    /** Keeps exactly one button in the Tab order: the last one used, else the first. */
    function rovingStop(editor) {
      var buttons = buttonsOf(editor);
      var stop = buttons.filter(function (button) {
        return button.getAttribute('tabindex') === '0';
      })[0];
      setRovingStop(editor, stop || buttons[0]);
    }

    function setRovingStop(editor, stop) {
      buttonsOf(editor).forEach(function (button) {
        var wanted = button === stop ? '0' : '-1';
        if (button.getAttribute('tabindex') !== wanted) button.setAttribute('tabindex', wanted);
      });
    }

    /** aria-pressed of the toggle buttons follows the format at the caret. */
    function updatePressed(editor) {
      if (!editor || !editor.toolbar) return;
      var selection = window.getSelection();
      var inside = selection && selection.rangeCount && editor.area.contains(selection.getRangeAt(0).startContainer);
      buttonsOf(editor).forEach(function (button) {
        if (!button.hasAttribute('aria-pressed')) return;
        var pressed = inside ? isActive(editor, button.getAttribute('data-lb-command')) : false;
        var value = pressed ? 'true' : 'false';
        if (button.getAttribute('aria-pressed') !== value) button.setAttribute('aria-pressed', value);
      });
    }

    function isActive(editor, command) {
      if (command === 'bold' || command === 'italic') {
        try {
          return document.queryCommandState(command);
        } catch (error) {
          return false;
        }
      }
      var tag = { h2: 'h2', h3: 'h3', quote: 'blockquote', ul: 'ul', ol: 'ol', link: 'a' }[command];
      return !!(tag && selectionAncestor(editor, tag));
    }

    function saveRange(editor) {
      var selection = window.getSelection();
      if (!editor || !selection || !selection.rangeCount) return;
      var range = selection.getRangeAt(0);
      if (editor.area.contains(range.commonAncestorContainer)) editor.range = range.cloneRange();
    }

    /** Remembers the selection inside an area (a toolbar button puts it back) and updates the pressed buttons. */
    function onSelectionChange() {
      var selection = window.getSelection();
      if (!selection || !selection.rangeCount) return;
      var range = selection.getRangeAt(0);
      var node = range.commonAncestorContainer;
      var element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
      var wrapper = element ? element.closest('[data-lb-rich]') : null;
      var parts = wrapper ? partsOf(wrapper) : null;
      var editor = parts ? editors.get(parts.area) : null;
      if (!editor || !editor.area.contains(node)) return;
      editor.range = range.cloneRange();
      updatePressed(editor);
    }

    /** A click on the field's label focuses the text (the textarea it names is hidden). */
    function onLabelClick(event) {
      var label = closestElement(event.target, 'label');
      var control = label && label.control;
      var wrapper = control && control.localName === 'textarea' ? control.closest('[data-lb-rich]') : null;
      var parts = wrapper ? partsOf(wrapper) : null;
      if (!parts || parts.source !== control || !editors.has(parts.area)) return;
      event.preventDefault();
      parts.area.focus();
    }

    /** What to focus instead of `field` when it is an editor's (hidden) textarea: its area; else `field`. */
    function focusTarget(field) {
      var wrapper = field && field.localName === 'textarea' ? field.closest('[data-lb-rich]') : null;
      var parts = wrapper ? partsOf(wrapper) : null;
      return parts && parts.source === field && editors.has(parts.area) ? parts.area : field;
    }

    function boot() {
      // Enter makes paragraphs (<p>, which the stored HTML keeps), not <div>s.
      exec('defaultParagraphSeparator', 'p');
      document.addEventListener('selectionchange', onSelectionChange);
      document.addEventListener('click', onLabelClick);
      refresh(document);
    }

    return {
      boot: boot,
      refresh: refresh,
      focusTarget: focusTarget,
      cleanHtml: function (html) {
        return cleanHtml(parseInert(html));
      },
    };
  })();

  // ---------------------------------------------------------------------------------------------------------------
  // DOM events
  // ---------------------------------------------------------------------------------------------------------------

  function inRoot(element) {
    var root = document.getElementById('lb-root');
    return !!root && root.contains(element);
  }

  /** `closest` from an event target, which may be a text node. */
  function closestElement(target, selector) {
    var element = target && target.nodeType === Node.ELEMENT_NODE ? target : target && target.parentElement;
    return element ? element.closest(selector) : null;
  }

  function onClick(event) {
    if (dismissFlash(event)) return;
    if (clickEvent(event)) return;
    followLink(event);
  }

  /** phx-click: sends `{type: "click", event, value}` with the element's phx-value-* attributes. */
  function clickEvent(event) {
    var element = closestElement(event.target, '[phx-click]');
    if (!element || !inRoot(element)) return false;
    // A link that is a live button must not also navigate.
    if (element.localName === 'a') event.preventDefault();
    if (!live.joined || matchesSafely(element, ':disabled') || element.closest('fieldset[disabled]')) return true;
    if (element.getAttribute('aria-disabled') === 'true') return true;
    // A change still in its debounce (a ticked checkbox, a picked option) must reach the server before the click,
    // which may reorder or rebuild the form: sent after it, the change would apply to whatever control is now there.
    forms.flushUnsent();
    var value = {};
    for (var i = 0; i < element.attributes.length; i++) {
      var attribute = element.attributes[i];
      if (attribute.name.indexOf('phx-value-') === 0) value[attribute.name.slice('phx-value-'.length)] = attribute.value;
    }
    push('event', { type: 'click', event: element.getAttribute('phx-click'), value: value }, function (status, response) {
      if (status === 'ok') {
        applyDiff(response);
        focusRequested(element);
      } else if (response.reason !== 'disconnected') {
        eventRefused(response);
      }
    });
    return true;
  }

  /**
   * After the reply to a click: the server may name, with `data-lb-autofocus`, where focus belongs now (the row a
   * builder button moved or added: focus would otherwise stay at the same place in the page, on what took the row's
   * place). Honoured only while focus is still on the clicked element or nowhere, so it never pulls focus from where
   * the user went meanwhile.
   */
  function focusRequested(clicked) {
    var root = document.getElementById('lb-root');
    var target = root && root.querySelector('[data-lb-autofocus]');
    if (!target || matchesSafely(target, ':disabled') || typeof target.focus !== 'function') return;
    var active = document.activeElement;
    var focusFree = !active || active === document.body || active === clicked || !clicked.isConnected;
    if (focusFree && target !== active) target.focus();
  }

  /** A plain click on a same-origin link while joined: leave the view first, then load the page. */
  function followLink(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = closestElement(event.target, 'a[href]');
    if (!link || !live.joined) return;
    if (link.hasAttribute('target') || link.hasAttribute('download') || link.closest('[data-lb-native]')) return;
    var href = link.getAttribute('href');
    if (!href || href.charAt(0) === '#') return;
    var url;
    try {
      // getAttribute, not .href: an SVG <a> has an animated-string object there.
      url = new URL(href, document.baseURI);
    } catch (error) {
      return;
    }
    if (url.origin !== location.origin || (url.protocol !== 'http:' && url.protocol !== 'https:')) return;
    // Same document, other fragment: the browser only scrolls, the page stays live.
    if (url.hash && url.href.split('#')[0] === location.href.split('#')[0]) return;
    event.preventDefault();
    if (!confirmLeave()) return;
    leaveAndGo(url.href);
  }

  /**
   * Before an in-app link leaves a form with unsaved changes: asks the form's `data-lb-confirm-leave` question when
   * the server marked changes (`data-lb-unsaved`) or the form holds one not acknowledged yet. True: leave.
   */
  function confirmLeave() {
    var root = document.getElementById('lb-root');
    var guarded = root ? root.querySelectorAll('form[data-lb-confirm-leave]') : [];
    for (var i = 0; i < guarded.length; i++) {
      var form = guarded[i];
      if (form.hasAttribute('data-lb-unsaved') || forms.hasUnsavedInput(form)) {
        return window.confirm(form.getAttribute('data-lb-confirm-leave'));
      }
    }
    return true;
  }

  function onPageHide() {
    // The page is going away (or into the back/forward cache): the socket closing now is no reason to reconnect.
    live.leaving = true;
  }

  function onPageShow(event) {
    // Back from the back/forward cache: the view was left (or its socket closed) when the page was hidden, and the
    // server has forgotten it. A fresh load gets a current page and a fresh token.
    if (event.persisted) location.reload();
  }

  function onOnline() {
    // The network is back: do not sit out the rest of a long backoff.
    if (live.reconnectTimer && !live.stopped && !live.leaving) {
      live.reconnectAttempts = 0;
      connect();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Boot
  // ---------------------------------------------------------------------------------------------------------------

  /** The tab's id, kept in sessionStorage so a reload reclaims the same place on the server. */
  function tabId() {
    try {
      var stored = sessionStorage.getItem(TAB_ID_KEY);
      if (stored) return stored;
      var fresh = randomId();
      sessionStorage.setItem(TAB_ID_KEY, fresh);
      return fresh;
    } catch (error) {
      return randomId(); // storage disabled: an id for this page only
    }
  }

  function randomId() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (byte) {
        return (byte < 16 ? '0' : '') + byte.toString(16);
      })
      .join('');
  }

  function boot() {
    // Flash close buttons work on every page, live or static.
    document.addEventListener('click', onClick);
    enhanceFlashes();
    showCarriedFlash();
    // Stylesheets show the rich-text editor instead of its plain textarea under html.lb-js, so that a page without
    // this client (or without JavaScript) keeps the textarea, which works on its own.
    document.documentElement.classList.add('lb-js');
    richText.boot();
    var root = document.getElementById('lb-root');
    if (!root) return; // a static page
    var view = root.getAttribute('data-lb-view');
    var token = root.getAttribute('data-lb-token');
    if (!view || !token) {
      warn('#lb-root needs data-lb-view and data-lb-token');
      setState('error');
      return;
    }
    live.topic = 'lv:' + view;
    live.token = token;
    live.tabId = tabId();
    document.addEventListener('input', forms.onEdit);
    document.addEventListener('change', forms.onEdit);
    document.addEventListener('focusout', forms.onLeave);
    document.addEventListener('submit', forms.onSubmit);
    document.addEventListener('keydown', forms.onKeydown);
    window.addEventListener('pagehide', onPageHide);
    window.addEventListener('pageshow', onPageShow);
    window.addEventListener('online', onOnline);
    connect();
  }

  window.Livebaton = {
    /** Morphs `element` into the outer HTML `html`; returns the element now in the page. */
    morph: morph,
    /** Applies a diff `{regions, title?, flash?, redirect?, navigate?}` as if the server had pushed it. */
    applyDiff: applyDiff,
    /** Shows flash messages `{kind: message}`. */
    showFlash: showFlash,
    /** The connection state (also on `document.body.dataset.lbState`). */
    get state() {
      return (document.body && document.body.dataset.lbState) || 'static';
    },
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
