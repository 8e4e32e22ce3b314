/// What was wrong with a request, shared by every front door (HTTP maps it to 400, MQTT to an
/// error reply). A struct with a private code so that new cases do not break callers.
public struct QueryError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case emptyMessages
        case invalidParameter
        case invalidCacheKey
        case malformed
    }

    private let code: Code
    /// The request field concerned, when there is one (`temperature`, `cache_tags`, …).
    public let field: String?
    public let message: String

    private init(_ code: Code, field: String?, message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    public static func emptyMessages() -> QueryError {
        QueryError(.emptyMessages, field: "messages", message: "messages must hold at least one message")
    }

    public static func invalidParameter(_ field: String, _ detail: String) -> QueryError {
        QueryError(.invalidParameter, field: field, message: "\(field) \(detail)")
    }

    public static func invalidCacheKey(_ text: String) -> QueryError {
        QueryError(.invalidCacheKey, field: "key",
                   message: "cache key must be 64 lower-case hex digits, got \(text.count) characters")
    }

    /// The request as a whole is unusable (not JSON, not an object).
    public static func malformed(_ detail: String) -> QueryError {
        QueryError(.malformed, field: nil, message: detail)
    }

    public var isMalformed: Bool { code == .malformed }
    public var isEmptyMessages: Bool { code == .emptyMessages }
    public var isInvalidParameter: Bool { code == .invalidParameter }
    public var isInvalidCacheKey: Bool { code == .invalidCacheKey }

    public var description: String { message }
}
