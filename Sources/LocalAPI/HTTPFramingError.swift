import HTTPTypes
import NIOCore
import NIOHTTP1

/// A request whose HTTP/1 framing is broken or over a limit: a bad chunk size line, a body
/// larger than the limit, a head NIO's parser refused. It names the part of the framing at fault
/// (`chunk-size`, `Content-Length`, …), which the error response carries as its `param`; the
/// connection is closed after answering, as nothing after a framing error can be trusted.
public struct HTTPFramingError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case malformed
        case tooLarge
        case headTooLarge
    }

    private let code: Code
    /// The part of the framing at fault: `chunk-size`, `chunk-data`, `trailer`,
    /// `Content-Length`, `Transfer-Encoding`, `request-line`, `header`.
    public let framing: String
    public let message: String

    private init(_ code: Code, framing: String, message: String) {
        self.code = code
        self.framing = framing
        self.message = message
    }

    /// The framing is not valid HTTP/1.1.
    static func malformed(_ framing: String, _ message: String) -> HTTPFramingError {
        HTTPFramingError(.malformed, framing: framing, message: message)
    }

    /// The body is (or says it will be) larger than the limit.
    static func bodyTooLarge(_ framing: String, _ message: String) -> HTTPFramingError {
        HTTPFramingError(.tooLarge, framing: framing, message: message)
    }

    public var status: HTTPResponse.Status {
        switch code {
        case .malformed: .badRequest
        case .tooLarge: .contentTooLarge
        case .headTooLarge: .requestHeaderFieldsTooLarge
        }
    }

    public var description: String { message }

    /// NIO's parser errors (llhttp's), named for the client.
    init(_ error: HTTPParserError) {
        switch error {
        case .invalidChunkSize:
            self.init(.malformed, framing: "chunk-size", message: "the chunked body has an invalid chunk size line")
        case .invalidContentLength:
            self.init(.malformed, framing: "Content-Length", message: "the Content-Length header is not a valid length")
        case .unexpectedContentLength:
            self.init(.malformed, framing: "Content-Length",
                      message: "the request has a Content-Length it must not have (a second one, or one beside Transfer-Encoding)")
        case .headerOverflow:
            self.init(.headTooLarge, framing: "header", message: "the request head is larger than the server accepts")
        case .invalidMethod, .invalidURL, .invalidVersion, .invalidPath, .invalidQueryString, .invalidFragment,
             .invalidHost, .invalidPort:
            self.init(.malformed, framing: "request-line", message: "the request line is not valid HTTP/1.1 (\(error))")
        case .invalidHeaderToken, .invalidCharactersUsed, .lfExpected, .invalidConstant, .strictModeAssertion:
            self.init(.malformed, framing: "header", message: "the request head is not valid HTTP/1.1 (\(error))")
        default:
            self.init(.malformed, framing: "message", message: "the request is not valid HTTP/1.1 (\(error))")
        }
    }

    /// The framing error behind `error`, if it is one: ours, or NIO's parser's.
    static func from(_ error: any Error) -> HTTPFramingError? {
        switch error {
        case let e as HTTPFramingError: e
        case let e as HTTPParserError: HTTPFramingError(e)
        default: nil
        }
    }
}
