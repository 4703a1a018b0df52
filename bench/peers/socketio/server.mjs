// A small Socket.IO 4.8 server with rooms and presence, the Socket.IO peer of livebaton's benchmarks
// (`livebaton-bench <scenario> --server socketio`). Socket.IO has no presence of its own; this adds the least that
// gives the same semantics as a Phoenix presence topic, so the load tool measures the same work on every server.
//
//   PORT=3001 node server.mjs      # listens on 127.0.0.1 only, WebSocket transport only
//
// Client → server (the last argument is an acknowledgement callback, answered with {ok: true} or {ok: false, reason}):
//   join(room, {user})   joins the room; then presence_state to the joiner and presence_diff (joins) to the others
//   leave(room)          leaves it; presence_diff (leaves) to the others
//   <event>(room, data)  any other event: sent to every other member of the room as <event>(room, data)
// Server → client, always (event, room, payload):
//   presence_state  {user: [socket ids]}               the room's members when this socket joined
//   presence_diff   {joins: {user: [ids]}, leaves: {user: [ids]}}
// A socket that disconnects leaves all its rooms (a presence_diff per room).

import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT ?? 3001);

/** room → user → Set of socket ids (one presence entry per connection, grouped by user like Phoenix metas). */
const rooms = new Map();

function track(room, user, id) {
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Map()));
  let ids = members.get(user);
  if (!ids) members.set(user, (ids = new Set()));
  ids.add(id);
}

function untrack(room, user, id) {
  const members = rooms.get(room);
  const ids = members?.get(user);
  if (!ids) return false;
  ids.delete(id);
  if (ids.size === 0) members.delete(user);
  if (members.size === 0) rooms.delete(room);
  return true;
}

function state(room) {
  const out = {};
  for (const [user, ids] of rooms.get(room) ?? []) out[user] = [...ids];
  return out;
}

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  // A big room's presence_state must fit.
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  /** room → the user this socket joined it as. */
  const joined = new Map();
  const reply = (ack, answer) => typeof ack === "function" && ack(answer);

  socket.on("join", (room, payload, ack) => {
    if (typeof room !== "string" || joined.has(room)) return reply(ack, { ok: false, reason: "bad or repeated join" });
    const user = String(payload?.user ?? socket.id);
    joined.set(room, user);
    socket.join(room);
    track(room, user, socket.id);
    reply(ack, { ok: true });
    socket.emit("presence_state", room, state(room));
    socket.to(room).emit("presence_diff", room, { joins: { [user]: [socket.id] }, leaves: {} });
  });

  socket.on("leave", (room, ack) => {
    const user = joined.get(room);
    if (user === undefined) return reply(ack, { ok: false, reason: "not joined" });
    joined.delete(room);
    socket.leave(room);
    untrack(room, user, socket.id);
    reply(ack, { ok: true });
    io.to(room).emit("presence_diff", room, { joins: {}, leaves: { [user]: [socket.id] } });
  });

  socket.onAny((event, room, data, ack) => {
    if (event === "join" || event === "leave") return;
    if (!joined.has(room)) return reply(ack, { ok: false, reason: "not joined" });
    socket.to(room).emit(event, room, data);
    reply(ack, { ok: true });
  });

  socket.on("disconnect", () => {
    for (const [room, user] of joined) {
      untrack(room, user, socket.id);
      io.to(room).emit("presence_diff", room, { joins: {}, leaves: { [user]: [socket.id] } });
    }
    joined.clear();
  });
});

http.listen(port, "127.0.0.1", () => console.log(`socket.io listening on 127.0.0.1:${port}`));

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
