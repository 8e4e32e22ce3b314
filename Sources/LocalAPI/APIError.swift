import Foundation
import Hummingbird

/// An OpenAI-style error: `{"error":{"type":…,"message":…}}` with its HTTP status.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let type: String
    public let message: String
    public let retryAfter: Int?

    public init(status: HTTPResponse.Status, type: String, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }
}
