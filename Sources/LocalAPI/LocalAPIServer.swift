import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import OutpostCore
import ServiceLifecycle

/// The HTTP/1.1 API on the agent's Unix socket: OpenAI-compatible completions, models, health,
/// metrics and the cache admin endpoints. A thin door: it parses and validates, then hands
/// queries to the service's `QueryAnswering` side and the admin endpoints to its `AdminService`
/// side.
public struct LocalAPIServer: Service {
    public static let maxBodyBytes = 1 << 20

    public struct Configuration: Sendable {
        public var socketPath: String
        /// Group that may use the socket (mode 0660); nil keeps the agent's group.
        public var socketGroup: String?
        /// A connection must send its request head within this time of opening (or of its last
        /// response), and one that sits idle this long is closed: slow, stuck or hostile clients
        /// cannot hold connections (Apache's keep-alive timeout is the same 5 s).
        public var idleTimeout: Duration = .seconds(5)
        /// Connections served in full. At the cap a new connection replaces the one idle the
        /// longest; when none is idle it gets one of `reservedConnections`.
        public var maxConnections = 256
        /// Connections beyond the cap that answer only `/health` and the admin endpoints, so an
        /// operator can still reach a saturated agent. Beyond these, connections get 503.
        public var reservedConnections = 16
        /// Sampling defaults applied to fields a request leaves out.
        public var defaults: SamplingParameters = SamplingParameters()

        public init(socketPath: String, socketGroup: String? = nil) {
            self.socketPath = socketPath
            self.socketGroup = socketGroup
        }
    }

    let configuration: Configuration
    let answering: any QueryAnswering
    let admin: any AdminService
    let logger: Logger
    let socketGuard: UnixSocketGuard
    let onReady: @Sendable () async -> Void
    let connections: ConnectionRegistry

    /// Claims the socket path (refusing a live agent's) before anything else starts.
    public init(configuration: Configuration, service: any AnswerService, logger: Logger,
                onReady: @escaping @Sendable () async -> Void = {}) throws {
        self.configuration = configuration
        self.answering = service
        self.admin = service
        self.logger = logger
        self.socketGuard = try UnixSocketGuard(path: configuration.socketPath)
        self.onReady = onReady
        self.connections = ConnectionRegistry(limits: .init(maxConnections: max(1, configuration.maxConnections),
                                                            reservedConnections: max(0, configuration.reservedConnections)))
    }

    public func run() async throws {
        let router = Router(context: APIRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        addRoutes(to: router)
        let guardRef = socketGuard
        let group = configuration.socketGroup
        let logger = self.logger
        let onReady = self.onReady
        let registry = connections
        let idleTimeout = configuration.idleTimeout
        let maxConnections = max(1, configuration.maxConnections)
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                APIChannel(responder: responder, registry: registry, idleTimeout: idleTimeout,
                           maxBodyBytes: Self.maxBodyBytes, maxConnections: maxConnections)
            },
            // No `availableConnectionsDelegate`: it stops accepting at the cap, which leaves new
            // connections (and `/health`) in the listen backlog; the registry decides instead.
            configuration: .init(address: .unixDomainSocket(path: configuration.socketPath), serverName: "outpost"),
            onServerRunning: { _ in
                do {
                    try guardRef.setPermissions(mode: 0o660, group: group)
                } catch {
                    logger.error("socket permissions", metadata: ["error": "\(error)"])
                }
                await onReady()
            },
            logger: logger
        )
        // `run()`, not `runService()`: the agent's service group owns the signals and the order of
        // shutdown. `runService()` would install its own SIGTERM handler, and the server could
        // then stop before the group asked it to, which the group reports as a failure.
        try await app.run()
    }

    func addRoutes(to router: Router<APIRequestContext>) {
        let answering = self.answering
        let admin = self.admin
        let defaults = configuration.defaults
        let connections = self.connections
        func on(_ endpoint: APIEndpoint,
                _ handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Response) {
            router.on(RouterPath(endpoint.path), method: endpoint.method, use: handler)
        }
        for endpoint in APIEndpoint.allCases {
            switch endpoint {
            case .chatCompletions, .completions:
                let kind: CompletionRequest.Kind = endpoint == .chatCompletions ? .chat : .completion
                on(endpoint) { request, context in
                    try await Self.complete(request, kind: kind, answering: answering,
                                            defaults: answering.samplingDefaults ?? defaults,
                                            departure: Departure(registry: connections, channel: context.channel))
                }
            case .models:
                on(endpoint) { _, _ in
                    let model: JSONValue = .object(["id": .string(answering.modelName), "object": .string("model"),
                                                    "created": .int(0), "owned_by": .string("outpost")])
                    return Self.json(.object(["object": .string("list"), "data": .array([model])]))
                }
            case .health:
                on(endpoint) { _, _ in
                    let report = await admin.health()
                    let data = (try? JSONEncoder().encode(report)) ?? Data()
                    return Response(status: report.ready ? .ok : .serviceUnavailable,
                                    headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
                }
            case .metrics:
                on(endpoint) { _, _ in
                    let text = await admin.metricsText() + connections.metricsText()
                    return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                                    body: .init(byteBuffer: ByteBuffer(string: text)))
                }
            case .cacheStatistics:
                on(endpoint) { _, _ in
                    Self.json(.object(await admin.cacheStatistics().mapValues { .int($0) }))
                }
            case .cacheInvalidate:
                on(endpoint) { request, _ in
                    let body = try await request.body.collect(upTo: Self.maxBodyBytes)
                    let scope = try Self.invalidationScope(Data(buffer: body))
                    let receipt = try await admin.invalidate(scope)
                    return Self.json(.object(["invalidated": .string(receipt.scope), "hlc": .string(receipt.hlc),
                                              "durable": .bool(true)]))
                }
            }
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: OpenAIResponse.json(value))))
    }

    /// `{"key":hex}`, `{"tag":t}`, `{"namespace":n}` or `{"all":true}` — exactly one.
    static func invalidationScope(_ body: Data) throws -> InvalidationScope {
        guard case .object(let o) = try JSONValue.parse(body) else {
            throw APIError.invalidRequest("the body must be a JSON object with one of key, tag, namespace, all")
        }
        let given = ["key", "tag", "namespace", "all"].filter { o[$0] != nil && o[$0] != .null }
        guard given.count == 1 else {
            throw APIError.invalidRequest("give exactly one of key, tag, namespace, all (got \(given.count))")
        }
        let f = CompletionRequest.Fields(object: o)
        switch given[0] {
        case "key": return .key(try CacheKey(hex: try f.string("key") ?? ""))
        case "tag":
            let t = try f.string("tag") ?? ""
            try Query.validateLabel(t, field: "tag")
            return .tag(t)
        case "namespace":
            let n = try f.string("namespace") ?? ""
            try Query.validateLabel(n, field: "namespace")
            return .namespace(n)
        default:
            guard try f.bool("all") == true else { throw APIError.invalidRequest("all must be true", param: "all") }
            return .all
        }
    }

    /// The connection a request came in on, to cancel the request's work when it closes.
    struct Departure: Sendable {
        let registry: ConnectionRegistry
        let channel: any Channel

        /// Cancels `task` as soon as the client goes; the registration is dropped by `remove`.
        func cancels<T, E>(_ task: Task<T, E>) -> ConnectionRegistry.Departure? {
            registry.onDeparture(of: channel) { task.cancel() }
        }

        func remove(_ registration: ConnectionRegistry.Departure?) { registry.remove(registration) }
    }

    static func complete(_ request: Request, kind: CompletionRequest.Kind, answering: any QueryAnswering,
                         defaults: SamplingParameters, departure: Departure) async throws -> Response {
        let body = try await request.body.collect(upTo: maxBodyBytes)
        let parsed = try CompletionRequest.parse(Data(buffer: body), kind: kind, defaults: defaults)
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.filter { $0 != "-" }.lowercased()
        let created = Int(Date().timeIntervalSince1970)
        let model = answering.modelName
        if !parsed.stream {
            // The answer runs in a task of its own that the client's leaving cancels: Hummingbird
            // does not cancel a handler whose connection closed (it finds out only when it writes
            // the response), and a generation nobody waits for would hold the model for the rest
            // of its tokens.
            let work = Task { try await answering.answer(parsed.query) { _ in } }
            let registration = departure.cancels(work)
            defer { departure.remove(registration) }
            let answered = try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
            return json(OpenAIResponse.whole(kind, id: id, created: created, model: model, answered: answered))
        }
        // Streaming: generation runs in its own task feeding a stream that the body writer
        // drains. The task is cancelled when the client goes: at once by the connection's
        // departure, or at the latest when a write fails.
        let (pieces, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .unbounded)
        let generation = Task {
            let first = FirstFlag()
            do {
                let answered = try await answering.answer(parsed.query) { piece in
                    continuation.yield(OpenAIResponse.sse(OpenAIResponse.chunk(kind, id: id, created: created, model: model,
                                                                               piece: piece, first: first.take())))
                }
                continuation.yield(OpenAIResponse.sse(OpenAIResponse.finalChunk(kind, id: id, created: created, model: model,
                                                                                 answered: answered)))
            } catch {
                let e = APIError.from(any: error)
                continuation.yield(OpenAIResponse.sse(.object(["error": .object(["type": .string(e.type), "message": .string(e.message)])])))
            }
            continuation.yield(OpenAIResponse.sseDone)
            continuation.finish()
        }
        let registration = departure.cancels(generation)
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { departure.remove(registration) }
            do {
                for await data in pieces {
                    try await writer.write(ByteBuffer(bytes: data))
                }
                try await writer.finish(nil)
            } catch {
                generation.cancel()
                throw error
            }
        })
    }
}

/// True the first time only (the first streamed chunk carries the role).
final class FirstFlag: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = Lock()
    private var taken = false
    func take() -> Bool {
        lock.withLock {
            defer { taken = true }
            return !taken
        }
    }
}
