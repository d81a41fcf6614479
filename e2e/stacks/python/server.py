#!/usr/bin/python3
"""The gRPC C-core test server of the end-to-end tests.

It runs on Debian's python3-grpcio (gRPC C-core) and python3-protobuf, with
/usr/bin/python3, and has the command-line interface shared with the
grpc-go server (e2e/stacks/goserver) and the grpc-js server
(e2e/stacks/node/server.js):

  server.py --addr HOST:PORT [--services servicestatus,greeter,health]
            [--id ID] [--not-serving] [--tls-cert FILE --tls-key FILE]
            [--drain-time DURATION] [--grace DURATION]

At start it generates the message classes of the example's protos and of
grpc.health.v1 with protoc --python_out (protoc from PATH) into a temporary
directory, removed when it stops. It serves servicestatus.HealthCheck
(Status "MagicResponseCodeOK", or UNAVAILABLE while not serving),
grpc.health.v1.Health/Check (SERVING or NOT_SERVING for "",
"helloworld.Greeter" and "servicestatus.HealthCheck", NOT_FOUND for other
names) and helloworld.Greeter, whose reply names --id. SIGUSR1 makes it not
serving, SIGUSR2 serving again. SIGTERM stops it gracefully, as C-core
servers behind HAProxy's generated checks should stop: it reports not
serving on every name (which drains it from HAProxy at the next check),
waits --drain-time (the drain-time of the fragment's contract line) and
then as long again, so that every connection, whose maximum age is
--drain-time, has been told to go away, lets the calls in flight finish for
at most --grace (server.stop(grace), which refuses new calls), and exits 0; SIGUSR1 and
SIGUSR2 no longer change its state then. SIGINT, or a second SIGTERM, stops
it at once. DURATION is Go's form: 1500ms, 1.5s, 1m30s. On standard output
it prints "listening HOST:PORT" once it accepts connections, "serving true"
or "serving false" after each change of state (SIGTERM's included), and one
JSON line per call with the method, the :authority, the user agent and the
metadata it received.
"""

import argparse
import base64
import concurrent.futures
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
INCLUDES = [
    os.path.join(ROOT, 'options'),
    os.path.join(ROOT, 'example', 'proto'),
    os.path.join(ROOT, 'e2e', 'stacks', 'proto'),
]
PROTOS = {
    'servicestatus': 'servicestatus/servicestatus.proto',
    'greeter': 'helloworld/greeter.proto',
    'health': 'grpc_health/v1/health.proto',
}
HEALTH_NAMES = {'', 'helloworld.Greeter', 'servicestatus.HealthCheck'}
SIGNALS = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT}

_print_lock = threading.Lock()


def println(line):
    """Prints one whole line on standard output, one thread at a time."""
    with _print_lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def load_messages(tmp):
    """Generates the protos' Python modules into tmp and imports them."""
    args = ['protoc'] + ['-I' + d for d in INCLUDES] + ['--python_out=' + tmp]
    args += list(PROTOS.values()) + ['haproxycheck/v1/haproxycheck.proto']
    subprocess.run(args, check=True)
    sys.path.insert(0, tmp)
    return {name: importlib.import_module(proto[:-len('.proto')].replace('/', '.') + '_pb2')
            for name, proto in PROTOS.items()}


def record(method, context):
    """Prints the JSON line of one call."""
    metadata = {}
    user_agent = []
    for key, value in context.invocation_metadata():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode('ascii')
        if key == 'user-agent':
            user_agent.append(value)
        elif not key.startswith(':'):
            metadata[key] = metadata[key] + ',' + value if key in metadata else value
    # C-core knows the call's :authority (grpc_call_details.host), but
    # grpcio's public API does not give it to a handler: it is read from the
    # call details that the server context keeps.
    host = context._rpc_event.call_details.host  # pylint: disable=protected-access
    if isinstance(host, bytes):
        host = host.decode('utf-8', 'replace')
    println(json.dumps({
        'method': method,
        'authority': host or '',
        'metadata': metadata,
        'user_agent': ','.join(user_agent),
    }, separators=(',', ':')))


class Server:
    """The servicers of the three services, sharing one serving state."""

    def __init__(self, messages, server_id, serving):
        self.messages = messages
        self.server_id = server_id
        self.serving = serving

    def status_check(self, request, context):
        """servicestatus.HealthCheck/Check."""
        del request
        record('/servicestatus.HealthCheck/Check', context)
        if not self.serving:
            context.abort(grpc.StatusCode.UNAVAILABLE, 'servicestatus.HealthCheck is not serving')
        return self.messages['servicestatus'].HealthCheckResponse(Status='MagicResponseCodeOK')

    def say_hello(self, request, context):
        """helloworld.Greeter/SayHello."""
        record('/helloworld.Greeter/SayHello', context)
        return self.messages['greeter'].HelloReply(
            message='Hello %s from %s' % (request.name, self.server_id))

    def health_check(self, request, context):
        """grpc.health.v1.Health/Check."""
        record('/grpc.health.v1.Health/Check', context)
        if request.service not in HEALTH_NAMES:
            context.abort(grpc.StatusCode.NOT_FOUND, 'unknown service')
        response = self.messages['health'].HealthCheckResponse
        return response(status=response.SERVING if self.serving else response.NOT_SERVING)

    def handlers(self, services):
        """Returns the generic handlers of the chosen services."""
        def unary(fn, request, response):
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request.FromString,
                response_serializer=response.SerializeToString)
        status = self.messages['servicestatus']
        greeter = self.messages['greeter']
        health = self.messages['health']
        table = {
            'servicestatus': ('servicestatus.HealthCheck', {
                'Check': unary(self.status_check, status.HealthCheckRequest,
                               status.HealthCheckResponse)}),
            'greeter': ('helloworld.Greeter', {
                'SayHello': unary(self.say_hello, greeter.HelloRequest, greeter.HelloReply)}),
            'health': ('grpc.health.v1.Health', {
                'Check': unary(self.health_check, health.HealthCheckRequest,
                               health.HealthCheckResponse)}),
        }
        return [grpc.method_handlers_generic_handler(*table[s]) for s in services]


_DURATION_PART = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)')
_DURATION_UNITS = {'ms': 0.001, 's': 1.0, 'm': 60.0, 'h': 3600.0}


def parse_duration(text):
    """Returns the seconds of a duration in Go's form (1500ms, 1.5s, 1m30s, 0)."""
    if text == '0':
        return 0.0
    seconds, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise argparse.ArgumentTypeError('want a duration such as 1500ms or 1.5s, not %r' % text)
    return seconds


def stop_signal(info):
    """Reports whether sigtimedwait's info is of a signal that stops the
    server at once; info is None when no signal came."""
    return info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT)


def stop_gracefully(server, servicers, drain_time, grace):
    """Stops server as SIGTERM asks: reports not serving, waits drain_time so
    that HAProxy's checks see it and send no new connections, then lets the
    calls in flight finish for at most grace. SIGINT or a second SIGTERM
    meanwhile stops it at once."""
    servicers.serving = False
    println('serving false')
    # server.stop cancels the calls that have reached C-core but that grpcio
    # has not yet taken up, and in mode tcp clients send new calls on their
    # connection until it is told to go away. So every connection is given
    # a maximum age of drain_time (see main): once HAProxy sends no new
    # connection, waiting that age again (with C-core's 10% jitter) lets
    # C-core send every connection a GOAWAY before server.stop.
    deadline = time.monotonic() + drain_time + 1.1 * drain_time
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if stop_signal(signal.sigtimedwait(SIGNALS, remaining)):
            server.stop(None).wait(5)
            return
    stopped = server.stop(grace)
    while not stopped.is_set():
        if stop_signal(signal.sigtimedwait(SIGNALS, 0.05)):
            server.stop(None).wait(5)
            return


def split_host_port(addr):
    """Splits "host:port" or "[v6]:port"."""
    host, sep, port = addr.rpartition(':')
    if not sep or not port.isdigit():
        raise SystemExit('server.py: --addr %s: want HOST:PORT' % addr)
    return host.strip('[]'), int(port)


def join_host_port(host, port):
    """Is the inverse of split_host_port."""
    return '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)


def main():
    """Serves until it has stopped on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description='gRPC C-core test server')
    parser.add_argument('--addr', default='127.0.0.1:0', help='HOST:PORT to listen on')
    parser.add_argument('--services', default='servicestatus,greeter,health',
                        help='comma-separated services to serve: servicestatus, greeter, health')
    parser.add_argument('--id', default='',
                        help="ID that the Greeter's replies name (default: the listen address)")
    parser.add_argument('--not-serving', action='store_true', help='start not serving')
    parser.add_argument('--tls-cert', default='', help='serve TLS with this certificate FILE (PEM)')
    parser.add_argument('--tls-key', default='', help='serve TLS with this private key FILE (PEM)')
    parser.add_argument('--drain-time', type=parse_duration, default=0.0,
                        help="on SIGTERM, how long to report not serving before stopping: "
                        "the drain-time of the fragment's contract line")
    parser.add_argument('--grace', type=parse_duration, default=10.0,
                        help='on SIGTERM, how long calls in flight may take to finish after the drain time')
    args = parser.parse_args()
    services = args.services.split(',')
    for s in services:
        if s not in PROTOS:
            parser.error('unknown service %r in --services' % s)
    host, port = split_host_port(args.addr)

    # The signals are taken by sigwait below; blocking them first makes
    # C-core's threads, started later, inherit the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    tmp = tempfile.mkdtemp(prefix='haproxycheck-c-core-')
    try:
        servicers = Server(load_messages(tmp), args.id, not args.not_serving)
        # C-core sets SO_REUSEPORT by default, so a second server could bind
        # an address in use; the other stacks refuse to.
        options = [('grpc.so_reuseport', 0)]
        if args.drain_time > 0:
            # See stop_gracefully.
            options += [('grpc.max_connection_age_ms', int(args.drain_time * 1000)),
                        ('grpc.max_connection_age_grace_ms', int(args.grace * 1000))]
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8),
                             handlers=servicers.handlers(services),
                             options=options)
        if args.tls_cert or args.tls_key:
            with open(args.tls_key, 'rb') as key, open(args.tls_cert, 'rb') as cert:
                creds = grpc.ssl_server_credentials([(key.read(), cert.read())])
            port = server.add_secure_port(join_host_port(host, port), creds)
        else:
            port = server.add_insecure_port(join_host_port(host, port))
        if not port:
            raise SystemExit('server.py: cannot listen on %s' % args.addr)
        listening = join_host_port(host, port)
        servicers.server_id = servicers.server_id or listening
        server.start()
        println('listening ' + listening)
        while True:
            sig = signal.sigwait(SIGNALS)
            if sig in (signal.SIGUSR1, signal.SIGUSR2):
                servicers.serving = sig == signal.SIGUSR2
                println('serving %s' % ('true' if servicers.serving else 'false'))
            elif sig == signal.SIGTERM:
                stop_gracefully(server, servicers, args.drain_time, args.grace)
                return
            else:
                server.stop(None).wait(5)
                return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
