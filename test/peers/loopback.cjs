'use strict'
// Preload (node --require) for the test peers: servers that call
// listen(port) without a host would accept connections on every
// interface. This makes every such call bind 127.0.0.1 instead, so a test
// run never exposes a peer to the network. Calls that name a host, a unix
// socket path, or an existing handle are left alone.

const net = require('node:net')

const LOOPBACK = '127.0.0.1'
const originalListen = net.Server.prototype.listen

function isPort(value) {
  return typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value))
}

function withLoopback(args) {
  const [first] = args
  // listen() or listen(callback): an ephemeral port.
  if (first === undefined || first === null || typeof first === 'function') {
    return [0, LOOPBACK, ...args.slice(first === undefined || first === null ? 1 : 0)]
  }
  // listen(port[, host][, backlog][, callback]).
  if (isPort(first)) {
    if (typeof args[1] === 'string') return args
    return [first, LOOPBACK, ...args.slice(1)]
  }
  // listen(options[, callback]) with a TCP port and no host.
  if (typeof first === 'object' && !Array.isArray(first)) {
    const tcp = first.path === undefined && first.fd === undefined && first.handle === undefined && first._handle === undefined
    if (tcp && first.host === undefined) {
      return [{ ...first, host: LOOPBACK }, ...args.slice(1)]
    }
  }
  return args
}

net.Server.prototype.listen = function listen(...args) {
  return originalListen.apply(this, withLoopback(args))
}
