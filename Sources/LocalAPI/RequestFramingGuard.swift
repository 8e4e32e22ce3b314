import NIOCore

/// First in each connection's pipeline, before NIO's HTTP parser: follows the request framing
/// (see `StateMachine`) and refuses at once, with an `HTTPFramingError`, a body over the limit or
/// a chunk size line that is not one. The bytes before the fault go on to the parser, the error
/// after them (the request being read then fails with it, or `ConnectionHandler` answers it);
/// nothing after a fault is passed on.
final class RequestFramingGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var machine: StateMachine

    init(maxBodyBytes: Int) {
        machine = StateMachine(maxBodyBytes: maxBodyBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let verdict = buffer.withUnsafeReadableBytes { machine.consume($0) }
        switch verdict {
        case .forward:
            context.fireChannelRead(data)
        case .discard:
            break
        case .reject(let error, let forwarding):
            if forwarding > 0, let head = buffer.getSlice(at: buffer.readerIndex, length: forwarding) {
                context.fireChannelRead(wrapInboundOut(head))
            }
            context.fireErrorCaught(error)
        }
    }
}

@available(*, unavailable)
extension RequestFramingGuard: Sendable {}
