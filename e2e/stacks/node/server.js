'use strict';
// The grpc-js test server of the end-to-end tests. It has the command-line
// interface shared with the grpc-go server (e2e/stacks/goserver) and the
// C-core server (e2e/stacks/python/server.py):
//
//   node server.js --addr HOST:PORT [--services servicestatus,greeter,health]
//                  [--id ID] [--not-serving] [--tls-cert FILE --tls-key FILE]
//                  [--drain-time DURATION] [--grace DURATION]
//
// It loads the example's protos and grpc.health.v1 at run time with
// @grpc/proto-loader and serves servicestatus.HealthCheck (Status
// "MagicResponseCodeOK", or UNAVAILABLE while not serving),
// grpc.health.v1.Health/Check (SERVING or NOT_SERVING for "",
// "helloworld.Greeter" and "servicestatus.HealthCheck", NOT_FOUND for other
// names) and helloworld.Greeter, whose reply names --id. SIGUSR1 makes it not
// serving, SIGUSR2 serving again. SIGTERM stops it gracefully, as grpc-js
// servers behind HAProxy's generated checks should stop: it reports not
// serving on every name (which drains it from HAProxy at the next check),
// waits --drain-time (the drain-time of the fragment's contract line), lets
// the calls in flight finish for at most --grace (server.tryShutdown, which
// also sends clients a GOAWAY, then server.forceShutdown), and exits 0;
// SIGUSR1 and SIGUSR2 no longer change its state then. SIGINT, or a second
// SIGTERM, stops it at once. DURATION is Go's form: 1500ms, 1.5s, 1m30s. On
// standard output it prints "listening HOST:PORT" once it accepts
// connections, "serving true" or "serving false" after each change of state
// (SIGTERM's included), and one JSON line per call with the method, the
// :authority, the user agent and the metadata it received. It refuses to
// run on a Node.js that can lose calls when it stops (runtime.js).

// A graceful stop on this Node.js could fail calls (runtime.js): refuse to
// run before loading anything else.
const unfit = require('./runtime').unfitReason(process.versions.node);
if (unfit !== '') {
  console.error(`server.js: ${unfit}`);
  process.exit(2);
}

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const root = path.resolve(__dirname, '..', '..', '..');
const healthNames = new Set(['', 'helloworld.Greeter', 'servicestatus.HealthCheck']);
const allServices = ['servicestatus', 'greeter', 'health'];

function main() {
  const { values: args } = parseArgs({
    options: {
      addr: { type: 'string', default: '127.0.0.1:0' },
      services: { type: 'string', default: allServices.join(',') },
      id: { type: 'string', default: '' },
      'not-serving': { type: 'boolean', default: false },
      'tls-cert': { type: 'string', default: '' },
      'tls-key': { type: 'string', default: '' },
      'drain-time': { type: 'string', default: '0s' },
      grace: { type: 'string', default: '10s' },
    },
    strict: true,
  });
  const services = args.services.split(',');
  for (const s of services) {
    if (!allServices.includes(s)) {
      throw new Error(`unknown service "${s}" in --services`);
    }
  }
  let serving = !args['not-serving'];
  const drainMS = parseDuration('--drain-time', args['drain-time']);
  const graceMS = parseDuration('--grace', args.grace);

  const definition = protoLoader.loadSync(
    ['servicestatus/servicestatus.proto', 'helloworld/greeter.proto', 'grpc_health/v1/health.proto'],
    {
      keepCase: true,
      enums: String,
      defaults: true,
      includeDirs: [
        path.join(root, 'options'),
        path.join(root, 'example', 'proto'),
        path.join(root, 'e2e', 'stacks', 'proto'),
      ],
    });
  const loaded = grpc.loadPackageDefinition(definition);

  const { host } = splitHostPort(args.addr);
  let id = args.id;
  const server = new grpc.Server();
  if (services.includes('servicestatus')) {
    server.addService(loaded.servicestatus.HealthCheck.service, {
      Check: recorded((call, callback) => {
        if (!serving) {
          callback({ code: grpc.status.UNAVAILABLE, details: 'servicestatus.HealthCheck is not serving' });
          return;
        }
        callback(null, { Status: 'MagicResponseCodeOK' });
      }),
    });
  }
  if (services.includes('greeter')) {
    server.addService(loaded.helloworld.Greeter.service, {
      SayHello: recorded((call, callback) => {
        callback(null, { message: `Hello ${call.request.name} from ${id}` });
      }),
    });
  }
  if (services.includes('health')) {
    server.addService(loaded.grpc.health.v1.Health.service, {
      Check: recorded((call, callback) => {
        if (!healthNames.has(call.request.service)) {
          callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          return;
        }
        callback(null, { status: serving ? 'SERVING' : 'NOT_SERVING' });
      }),
    });
  }

  let stopping = false;
  process.on('SIGUSR1', () => setServing(false));
  process.on('SIGUSR2', () => setServing(true));
  process.on('SIGTERM', () => (stopping ? stopNow() : stopGracefully()));
  process.on('SIGINT', stopNow);
  function setServing(s) {
    if (stopping) {
      return;
    }
    serving = s;
    console.log(`serving ${s}`);
  }
  // stopGracefully reports not serving, waits the drain time so that
  // HAProxy's checks see it and send no new connections, then lets the
  // calls in flight finish for at most the grace period.
  function stopGracefully() {
    setServing(false);
    stopping = true;
    setTimeout(() => {
      const graceOver = setTimeout(stopNow, graceMS);
      server.tryShutdown(() => {
        clearTimeout(graceOver);
        process.exit(0);
      });
    }, drainMS);
  }
  function stopNow() {
    server.forceShutdown();
    process.exit(0);
  }

  let creds = grpc.ServerCredentials.createInsecure();
  if (args['tls-cert'] || args['tls-key']) {
    creds = grpc.ServerCredentials.createSsl(null, [{
      private_key: fs.readFileSync(args['tls-key']),
      cert_chain: fs.readFileSync(args['tls-cert']),
    }], false);
  }
  server.bindAsync(args.addr, creds, (err, boundPort) => {
    if (err) {
      console.error(`server.js: ${err.message}`);
      process.exit(1);
    }
    const listening = joinHostPort(host, boundPort);
    if (!id) {
      id = listening;
    }
    console.log(`listening ${listening}`);
  });
}

// recorded wraps a unary handler so that every call is printed first.
function recorded(handler) {
  return (call, callback) => {
    const metadata = {};
    let userAgent = '';
    for (const key of Object.keys(call.metadata.getMap())) {
      const joined = call.metadata.get(key)
        .map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v))
        .join(',');
      if (key === 'user-agent') {
        userAgent = joined;
      } else {
        metadata[key] = joined;
      }
    }
    console.log(JSON.stringify({
      method: call.getPath(),
      authority: call.getHost(),
      metadata,
      user_agent: userAgent,
    }));
    handler(call, callback);
  };
}

// parseDuration returns the milliseconds of a duration in Go's form
// (1500ms, 1.5s, 1m30s, 0), or throws naming flag.
function parseDuration(flag, text) {
  const units = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  if (text === '0') {
    return 0;
  }
  const part = /(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)/y;
  let ms = 0;
  let m;
  while (part.lastIndex < text.length && (m = part.exec(text)) !== null) {
    ms += Number(m[1]) * units[m[2]];
  }
  if (text === '' || part.lastIndex !== text.length) {
    throw new Error(`${flag} ${text}: want a duration such as 1500ms or 1.5s`);
  }
  return ms;
}

// splitHostPort splits "host:port" or "[v6]:port"; the port must be there.
function splitHostPort(addr) {
  const i = addr.lastIndexOf(':');
  if (i < 0) {
    throw new Error(`--addr ${addr}: want HOST:PORT`);
  }
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: addr.slice(i + 1) };
}

// joinHostPort is the inverse of splitHostPort.
function joinHostPort(host, port) {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

try {
  main();
} catch (err) {
  console.error(`server.js: ${err.message}`);
  process.exit(2);
}
