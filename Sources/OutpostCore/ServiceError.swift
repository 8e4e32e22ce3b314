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
