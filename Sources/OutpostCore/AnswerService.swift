/// What the front doors (HTTP on the Unix socket, MQTT request topics) ask of the agent.
/// `Agent` implements it; the doors only parse, validate and hand over.
public protocol AnswerService: Sendable {
    /// Answers `query`. Text is handed to `onPiece` as it is produced (a cached answer arrives as
    /// one piece); the returned value carries the whole answer and how it was obtained.
    /// Throws `ServiceError` when the request cannot be served (busy, too long, shutting down).
    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery

    /// The model's identity for `/v1/models` and responses.
    var modelName: String { get }

    func health() async -> HealthReport

    /// Counters of the answer cache, snake_case names (`hits`, `stale_hits`, …).
    func cacheStatistics() async -> [String: Int]

    /// Applies an invalidation durably (returns once it is on disk) and announces it to peers.
    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt

    /// Prometheus text exposition of the agent's metrics.
    func metricsText() async -> String

    /// Sampling defaults for the fields a request leaves out, when the service changes them while
    /// running (a fleet config); nil leaves each door with the defaults it was configured with.
    var samplingDefaults: SamplingParameters? { get }
}

extension AnswerService {
    public var samplingDefaults: SamplingParameters? { nil }
}

/// An answer and where it came from.
public struct AnsweredQuery: Sendable {
    public var answer: Answer
    public var cached: Bool
    public var stale: Bool
    public var cacheKey: CacheKey?
    public var gateway: String
    public var kernel: String
    public var timings: Timings

    public init(answer: Answer, cached: Bool, stale: Bool, cacheKey: CacheKey?, gateway: String, kernel: String, timings: Timings) {
        self.answer = answer
        self.cached = cached
        self.stale = stale
        self.cacheKey = cacheKey
        self.gateway = gateway
        self.kernel = kernel
        self.timings = timings
    }
}

/// Where the time of one request went, in milliseconds.
public struct Timings: Sendable, Codable, Equatable {
    public var queueMs: Double
    public var promptMs: Double
    public var generateMs: Double
    public var totalMs: Double

    enum CodingKeys: String, CodingKey {
        case queueMs = "queue_ms"
        case promptMs = "prompt_ms"
        case generateMs = "generate_ms"
        case totalMs = "total_ms"
    }

    public init(queueMs: Double = 0, promptMs: Double = 0, generateMs: Double = 0, totalMs: Double = 0) {
        self.queueMs = queueMs
        self.promptMs = promptMs
        self.generateMs = generateMs
        self.totalMs = totalMs
    }
}

/// `/health`: whether the agent can answer and what it runs.
public struct HealthReport: Sendable, Codable, Equatable {
    public var ready: Bool
    public var modelLoaded: Bool
    public var modelFingerprint: String
    public var kernel: String
    public var configVersion: Int
    public var broker: String
    public var gateway: String
    public var uptimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case ready
        case modelLoaded = "model_loaded"
        case modelFingerprint = "model_fingerprint"
        case kernel
        case configVersion = "config_version"
        case broker, gateway
        case uptimeSeconds = "uptime_s"
    }

    public init(ready: Bool, modelLoaded: Bool, modelFingerprint: String, kernel: String, configVersion: Int,
                broker: String, gateway: String, uptimeSeconds: Double) {
        self.ready = ready
        self.modelLoaded = modelLoaded
        self.modelFingerprint = modelFingerprint
        self.kernel = kernel
        self.configVersion = configVersion
        self.broker = broker
        self.gateway = gateway
        self.uptimeSeconds = uptimeSeconds
    }
}

/// An invalidation made durable.
public struct InvalidationReceipt: Sendable, Codable, Equatable {
    public var scope: String
    public var hlc: String

    public init(scope: String, hlc: String) {
        self.scope = scope
        self.hlc = hlc
    }

    /// The receipt for a tombstone just made durable.
    public init(_ tombstone: Tombstone) {
        self.init(scope: tombstone.scope.description, hlc: tombstone.hlc.description)
    }
}

/// Why the agent could not serve a well-formed request. The doors map it to their own errors
/// (HTTP status, MQTT error reply).
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable { case busy, tooLong, shuttingDown, failed }
    private let code: Code
    public let message: String
    /// Seconds after which a retry may succeed (for `busy`).
    public let retryAfter: Int?

    private init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func busy(_ message: String, retryAfter: Int) -> ServiceError { ServiceError(.busy, message, retryAfter: retryAfter) }
    public static func tooLong(_ message: String) -> ServiceError { ServiceError(.tooLong, message) }
    public static func shuttingDown() -> ServiceError { ServiceError(.shuttingDown, "the agent is shutting down") }
    public static func failed(_ message: String) -> ServiceError { ServiceError(.failed, message) }

    public var isBusy: Bool { code == .busy }
    public var isTooLong: Bool { code == .tooLong }
    public var isShuttingDown: Bool { code == .shuttingDown }
    public var description: String { message }
}
