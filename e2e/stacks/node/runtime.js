'use strict';
// Whether a Node.js can stop a grpc-js server without losing calls. On a
// graceful stop, grpc-js closes each HTTP/2 session, and in Node.js before
// 20.10.0 (and 21.1.0) a closing session that loses its last stream
// destroys itself at once, inside nghttp2's callback, which can end the
// connection before the last frames of the calls on it reach the client:
// those calls fail with UNAVAILABLE ("error reading from server: EOF" in
// grpc-go). Node.js
// 20.10.0 defers that destroy to the next turn of the event loop. Measured
// through HAProxy in mode tcp (e2e/deploy): 18.20.4, 18.20.8, 20.0.0,
// 20.5.1, 20.7.0, 20.8.1, 20.9.0 and 21.0.0 lost calls in rolling restarts
// and scale-ins; 20.10.0, 20.15.0, 20.19.2, 20.20.2, 21.1.0 and 22.0.0
// lost none.
//
//   node runtime.js [VERSION]
//
// checks VERSION (default: this Node.js's) and exits 0 if it has the fix,
// else prints why not on standard error and exits 1. server.js refuses to
// run on a Node.js without it; scripts/nodejs and the Go tests ask this
// file.

// fixedIn lists, per major version, the first release with the fix.
const fixedIn = new Map([[20, [10, 0]], [21, [1, 0]]]);
const firstFixedMajor = 22;

// stopsGracefully reports whether Node.js version ("20.19.3") has the fix.
function stopsGracefully(version) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (m === null) {
    throw new Error(`"${version}" is not a Node.js version such as 22.16.0`);
  }
  const [major, minor, patch] = m.slice(1).map(Number);
  if (major >= firstFixedMajor) {
    return true;
  }
  const first = fixedIn.get(major);
  return first !== undefined && (minor > first[0] || (minor === first[0] && patch >= first[1]));
}

// unfitReason returns why version cannot stop a grpc-js server without
// losing calls, or '' if it can.
function unfitReason(version) {
  if (stopsGracefully(version)) {
    return '';
  }
  return `Node.js ${version} can end a connection before the last frames of the calls on it ` +
    'are sent when a grpc-js server stops gracefully, which fails those calls: use Node.js ' +
    '20.10.0, 22 or later (scripts/nodejs prints one)';
}

module.exports = { stopsGracefully, unfitReason };

if (require.main === module) {
  try {
    const reason = unfitReason(process.argv[2] || process.versions.node);
    if (reason !== '') {
      console.error(reason);
      process.exit(1);
    }
  } catch (err) {
    console.error(`runtime.js: ${err.message}`);
    process.exit(2);
  }
}
