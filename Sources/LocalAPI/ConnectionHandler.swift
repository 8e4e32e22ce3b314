import FoundationEssentials
import NIOCore
import NIOHTTP1
import OutpostCore

/// One connection's HTTP/1 bookkeeping, between NIO's HTTP codec and Hummingbird's:
///
/// - tells the `ConnectionRegistry` when the connection is busy or idle;
/// - on a connection admitted beyond the cap (`reserved`), lets only health and admin requests
///   through and answers anything else 503; on a refused one, answers 503 and closes;
/// - ends each response as its request asked: HTTP/1.0 without `Connection: keep-alive`, or
///   `Connection: close`, or a framing error, finishes the connection after the response (NIO's
///   codec alone would keep an HTTP/1.0 connection open, and Hummingbird only honours `close`);
/// - answers framing errors (`RequestFramingGuard`'s, NIO parser's) with a JSON 400/413 that
///   names the framing. While a request's body is being read the error goes on to that request,
///   whose route answers it; between requests this handler answers it itself.
///
/// "Finishing" a connection shuts down its output once the last response is written and keeps
/// reading (and discarding) until the client closes or the idle timeout does: closing at once
/// while a client is still sending would make it see a reset instead of its answer.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Paths answered on a reserved connection (`APIEndpoint.isServedOnReserve`).
    static let reservedPaths = Set(APIEndpoint.allCases.filter(\.isServedOnReserve).map(\.path))

    /// A request passed on whose response has not ended, and how that response must end.
    private struct Exchange {
        var version: HTTPVersion
        var keepAlive: Bool
        var finishAfter = false
    }

    private let id: ConnectionRegistry.ID
    private let registry: ConnectionRegistry
    private let admission: ConnectionRegistry.Admission
    private let maxConnections: Int
    private var exchanges: [Exchange] = []
    /// A request passed on whose end has not been read.
    private var readingRequest = false
    /// Nothing more is passed on; the connection is finished after the responses in progress.
    private var failed = false
    /// This handler's own answer, written once the responses in progress have ended.
    private var pendingAnswer: APIError?
    private var finishing = false

    init(channel: any Channel, registry: ConnectionRegistry, admission: ConnectionRegistry.Admission, maxConnections: Int) {
        self.id = ConnectionRegistry.id(channel)
        self.registry = registry
        self.admission = admission
        self.maxConnections = maxConnections
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuseIfNeeded(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuseIfNeeded(context: context)
        context.fireChannelActive()
    }

    private func refuseIfNeeded(context: ChannelHandlerContext) {
        guard admission == .refused, !failed else { return }
        fail(with: APIError(status: .serviceUnavailable, type: "server_busy",
                            message: "the API has \(maxConnections) connections open and all are busy; try again shortly",
                            retryAfter: 1), context: context)
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if admission == .reserved, !Self.reservedPaths.contains(Self.path(of: head.uri)) {
                fail(with: APIError(status: .serviceUnavailable, type: "server_busy",
                                    message: "the API is at its limit of \(maxConnections) busy connections; "
                                        + "this connection answers only /health and the admin endpoints",
                                    retryAfter: 1), context: context)
                return
            }
            if exchanges.isEmpty { registry.requestStarted(id) }
            exchanges.append(Exchange(version: head.version, keepAlive: head.isKeepAlive))
            readingRequest = true
        case .body:
            break
        case .end:
            readingRequest = false
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let framing = HTTPFramingError.from(error) else {
            context.fireErrorCaught(error)
            return
        }
        // One answer per broken connection: later errors (the parser's, after ours) are dropped.
        guard !failed else { return }
        if readingRequest {
            // The route reading this body fails with it and answers; the connection is finished
            // after that answer. NIO's parser errors go on as ours, which Hummingbird does not
            // treat as its own (it would write a second, bare 400).
            failed = true
            context.fireErrorCaught(framing)
        } else {
            fail(with: APIError(framing), context: context)
        }
    }

    // MARK: Responses

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where !exchanges.isEmpty && !(100..<200).contains(head.status.code):
            shape(&head, for: &exchanges[0])
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where !exchanges.isEmpty:
            let exchange = exchanges.removeFirst()
            if exchanges.isEmpty { registry.responseFinished(id) }
            if exchanges.isEmpty, let answer = pendingAnswer {
                context.write(data, promise: promise)
                writeAnswer(answer, context: context)
            } else if exchange.finishAfter || (exchanges.isEmpty && failed) {
                finish(context: context, last: data, promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        default:
            context.write(data, promise: promise)
        }
    }

    /// The response head as the request asked: its HTTP version (so an HTTP/1.0 client gets no
    /// chunked body) and whether the connection stays open.
    private func shape(_ head: inout HTTPResponseHead, for exchange: inout Exchange) {
        let isHTTP10 = exchange.version.major == 1 && exchange.version.minor == 0
        if isHTTP10 { head.version = .http1_0 }
        // A body without a length to an HTTP/1.0 client ends when the connection does.
        let closeDelimited = isHTTP10 && !head.headers.contains(name: "content-length")
        if !exchange.keepAlive || closeDelimited { exchange.finishAfter = true }
        if exchange.finishAfter || failed {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else if isHTTP10 {
            head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
    }

    // MARK: Own answers

    /// Stops passing anything on and answers `answer` once the responses in progress have ended.
    private func fail(with answer: APIError, context: ChannelHandlerContext) {
        failed = true
        if exchanges.isEmpty {
            writeAnswer(answer, context: context)
        } else {
            pendingAnswer = answer
        }
    }

    private func writeAnswer(_ answer: APIError, context: ChannelHandlerContext) {
        pendingAnswer = nil
        let body = answer.body
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.count)),
                                   ("Connection", "close")])
        if let retryAfter = answer.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        let head = HTTPResponseHead(version: .http1_1,
                                    status: HTTPResponseStatus(statusCode: Int(answer.status.code), reasonPhrase: answer.status.reasonPhrase),
                                    headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        // A refused connection has sent nothing yet: it is closed outright, so refusals cannot
        // pile up open sockets.
        finish(context: context, last: wrapOutboundOut(.end(nil)), promise: nil, fully: admission == .refused)
    }

    /// Writes `last`, flushes, then shuts down the output (see the type's comment), or closes the
    /// connection when `fully`.
    private func finish(context: ChannelHandlerContext, last: NIOAny, promise: EventLoopPromise<Void>?, fully: Bool = false) {
        guard !finishing else {
            context.writeAndFlush(last, promise: promise)
            return
        }
        finishing = true
        failed = true
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in channel.close(mode: fully ? .all : .output, promise: nil) }
        if let promise { written.futureResult.cascade(to: promise) }
        context.writeAndFlush(last, promise: written)
    }

    static func path(of uri: String) -> String {
        String(uri.prefix { $0 != "?" && $0 != "#" })
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}
