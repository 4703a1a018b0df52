// soketi 1.6.1 for livebaton's benchmarks (`livebaton-bench <scenario> --server soketi`), started in-process with
// loopback-only settings instead of through its CLI:
//
//   PORT=6001 METRICS_PORT=9601 node server.mjs
//
// - the WebSocket/HTTP server and the metrics server listen on 127.0.0.1 only (soketi's defaults are 0.0.0.0);
// - no UDP discovery: soketi always starts node-discover (a UDP broadcast to 255.255.255.255 every 500 ms) for its
//   cluster adapter, which the local adapter and local rate limiter used here never read, so it is not started;
// - one app, `livebaton-bench` (the key and secret the load tool signs channel auth with), with client events on
//   and no connection or event-rate limits;
// - presence channels of up to 100,000 members (the default is 100).

import soketi from "@soketi/soketi";

const { Server } = soketi;

class LoopbackServer extends Server {
  configureDiscovery() {
    return Promise.resolve();
  }
}

const port = Number(process.env.PORT ?? 6001);
const metricsPort = Number(process.env.METRICS_PORT ?? 9601);

const server = new LoopbackServer({
  host: "127.0.0.1",
  port,
  "metrics.enabled": false,
  "metrics.host": "127.0.0.1",
  "metrics.port": metricsPort,
  "adapter.driver": "local",
  "rateLimiter.driver": "local",
  "cluster.hostname": "127.0.0.1",
  "cluster.broadcast": "127.0.0.1",
  "cluster.unicast": "127.0.0.1",
  "presence.maxMembersPerChannel": 100000,
  "appManager.array.apps": [
    {
      id: "livebaton-bench",
      key: "livebaton-bench-key",
      secret: "livebaton-bench-secret",
      maxConnections: -1,
      enableClientMessages: true,
      enabled: true,
      maxBackendEventsPerSecond: -1,
      maxClientEventsPerSecond: -1,
      maxReadRequestsPerSecond: -1,
      webhooks: [],
    },
  ],
  shutdownGracePeriod: 0,
});

await server.start();

const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
