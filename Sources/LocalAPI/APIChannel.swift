import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The HTTP/1.1 child channel of the API socket: Hummingbird's `HTTP1Channel` pipeline with the
/// agent's defences around it. From the socket up:
///
/// 1. `RequestFramingGuard` — refuses a body over the limit or a broken chunk size line at once;
/// 2. NIO's HTTP/1 decoder and encoder;
/// 3. `ConnectionHandler` — busy/idle/gone for the `ConnectionRegistry`, the reserved path at the
///    cap, HTTP/1.0 and `Connection: close` endings, framing errors answered by name;
/// 4. Hummingbird's codec to HTTP types and its `HTTPConnectionStateHandler`, which closes a
///    connection whose request head has not arrived, or that has sat idle, for `idleTimeout`.
///
/// Each connection is admitted by the registry as it is accepted (closing the idle one it replaces
/// at the cap). Remote half-closure is turned off: a client that closes its end has gone, and the
/// connection closes at once, which is what lets `LocalAPIServer` cancel the generation it was
/// waiting for (as Go's net/http does on a read EOF).
struct APIChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let registry: ConnectionRegistry
    let idleTimeout: Duration
    let maxBodyBytes: Int
    let maxConnections: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let admission = registry.admit(channel)
            let registry = self.registry
            let id = ConnectionRegistry.id(channel)
            // However the connection ends, even before its pipeline is complete.
            channel.closeFuture.whenComplete { _ in registry.closed(id) }
            if admission != .normal {
                logger.debug("connection admitted beyond the cap", metadata: ["admission": "\(admission)"])
            }
            try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: false)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(RequestFramingGuard(maxBodyBytes: maxBodyBytes))
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false,  // NIOAsyncChannel pipelines, as in Hummingbird's HTTP1Channel
                withErrorHandling: false,  // ConnectionHandler answers parse errors, by name
                withOutboundHeaderValidation: false,  // HTTP types validate headers already
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: .init())
            try pipeline.addHandler(ConnectionHandler(channel: channel, registry: registry, admission: admission,
                                                      maxConnections: maxConnections))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}
