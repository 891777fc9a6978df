'use strict';
// A weaviate-ext reranker plugin in Node.js: Okapi BM25 over gRPC.
//
// It speaks hookspecs/weaviate_plugin.proto (copied next to this file by build.sh) with
// @grpc/grpc-js and @grpc/proto-loader, and does what the Python SDK's serve() does:
//
// - started by a host: listen on the unix socket named by WEAVIATE_EXT_GRPC_SOCKET
//   (created mode 0600), print the handshake line `weaviate-ext|1|unix|<path>` on
//   stdout, exit when stdin reaches end of file (the host is gone);
// - run by hand: `node server.js --address 127.0.0.1:50051` (or unix:///path), health
//   SERVING at once, for a host that connects with spec.address;
// - serve Plugin.Init/Info, grpc.health.v1.Health (NOT_SERVING until a good Init) and
//   Reranker.Rerank (one BM25 score per document, in input order).
//
// Everything it logs goes to stderr, which the host logs under the plugin's name.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { bm25Scores } = require('./src/bm25');

const PROTOCOL_VERSION = 1;
const HANDSHAKE_PREFIX = 'weaviate-ext';
const SOCKET_ENV = 'WEAVIATE_EXT_GRPC_SOCKET';
const PLUGIN_NAME_ENV = 'WEAVIATE_EXT_PLUGIN_NAME';
const DEFAULT_ADDRESS = '127.0.0.1:50051';
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const CONTRACT = path.join(__dirname, 'weaviate_plugin.proto');
const HEALTH = path.join(__dirname, 'src', 'health.proto');
const VERSION = require('./package.json').version;

const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function fail(message) {
  process.stderr.write(`grpc-node-reranker: ${message}\n`);
  process.exit(1);
}

function loadProtos() {
  if (!fs.existsSync(CONTRACT)) {
    fail(`${CONTRACT} is missing: run ./build.sh first (it copies hookspecs/weaviate_plugin.proto)`);
  }
  const contract = grpc.loadPackageDefinition(protoLoader.loadSync(CONTRACT, LOAD_OPTIONS));
  const health = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH, LOAD_OPTIONS));
  return { v1: contract.weaviate.plugin.v1, health: health.grpc.health.v1 };
}

// -- health --------------------------------------------------------------------------

class Health {
  constructor() {
    this.statuses = new Map();
    this.watchers = new Set();
  }

  set(status) {
    for (const service of ['', 'weaviate.plugin.v1.Reranker']) this.statuses.set(service, status);
    for (const call of this.watchers) this.send(call);
  }

  send(call) {
    const status = this.statuses.get(call.request.service);
    call.write({ status: status === undefined ? 'SERVICE_UNKNOWN' : status });
  }

  handlers() {
    return {
      Check: (call, callback) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        } else {
          callback(null, { status });
        }
      },
      Watch: (call) => {
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
        this.send(call);
      },
    };
  }
}

// -- the plugin ----------------------------------------------------------------------

class Bm25Reranker {
  constructor(health) {
    this.health = health;
    this.k1 = 1.5;
    this.b = 0.75;
    this.name = process.env[PLUGIN_NAME_ENV] || 'grpc-node-reranker';
  }

  setup(config) {
    const k1 = config.k1 === undefined ? 1.5 : Number(config.k1);
    const b = config.b === undefined ? 0.75 : Number(config.b);
    if (!Number.isFinite(k1) || k1 < 0) throw new Error(`config k1 must be a number >= 0, got ${config.k1}`);
    if (!Number.isFinite(b) || b < 0 || b > 1) throw new Error(`config b must be between 0 and 1, got ${config.b}`);
    this.k1 = k1;
    this.b = b;
  }

  pluginHandlers() {
    return {
      Init: (call, callback) => {
        try {
          const text = call.request.config_json;
          this.setup(text ? JSON.parse(text) : {});
        } catch (error) {
          this.health.set('NOT_SERVING');
          callback({ code: grpc.status.FAILED_PRECONDITION, details: `${error.name}: ${error.message}` });
          return;
        }
        if (call.request.plugin_name) this.name = call.request.plugin_name;
        this.health.set('SERVING');
        callback(null, {});
      },
      Info: (call, callback) => {
        callback(null, {
          name: this.name,
          version: VERSION,
          protocol_version: PROTOCOL_VERSION,
          plugin_type: 'reranker',
          methods: ['Rerank'],
        });
      },
    };
  }

  rerankerHandlers() {
    return {
      Rerank: (call, callback) => {
        try {
          const { query, documents } = call.request;
          callback(null, { scores: bm25Scores(query, documents, this.k1, this.b) });
        } catch (error) {
          callback({ code: grpc.status.INTERNAL, details: `${error.name}: ${error.message}` });
        }
      },
    };
  }
}

// -- serving -------------------------------------------------------------------------

function addressArgument(argv) {
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--address' && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith('--address=')) return argv[i].slice('--address='.length);
  }
  return null;
}

function unixPath(target) {
  if (target.startsWith('unix://')) return target.slice('unix://'.length);
  if (target.startsWith('unix:')) return target.slice('unix:'.length);
  return null;
}

function main() {
  const protos = loadProtos();
  const health = new Health();
  const plugin = new Bm25Reranker(health);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(protos.health.Health.service, health.handlers());
  server.addService(protos.v1.Plugin.service, plugin.pluginHandlers());
  server.addService(protos.v1.Reranker.service, plugin.rerankerHandlers());
  health.set('NOT_SERVING');

  const socketPath = process.env[SOCKET_ENV];
  const hosted = Boolean(socketPath);
  const target = hosted ? `unix:${socketPath}` : addressArgument(process.argv.slice(2)) || DEFAULT_ADDRESS;
  const socketFile = unixPath(target);
  if (socketFile && fs.existsSync(socketFile)) fs.unlinkSync(socketFile);
  const oldMask = process.umask(0o077); // the socket is created mode 0600
  server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, port) => {
    process.umask(oldMask);
    if (error) fail(`cannot listen on ${target}: ${error.message}`);
    if (socketFile) fs.chmodSync(socketFile, 0o600);
    if (hosted) {
      process.stdout.write(`${HANDSHAKE_PREFIX}|${PROTOCOL_VERSION}|unix|${socketPath}\n`);
      // The host holds our stdin open; its end means the host is gone.
      process.stdin.on('end', () => stop(0));
      process.stdin.on('error', () => stop(0));
      process.stdin.resume();
    } else {
      health.set('SERVING');
      const where = socketFile ? target : `${target.slice(0, target.lastIndexOf(':'))}:${port}`;
      process.stderr.write(`serving Bm25Reranker on ${where}\n`);
    }
  });

  let stopping = false;
  function stop(code) {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      server.forceShutdown();
      process.exit(code);
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(timer);
      process.exit(code);
    });
  }
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
}

main();
