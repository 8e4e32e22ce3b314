import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import OutpostCore

/// An OpenAI-style error: `{"error":{"type":…,"message":…,"param":…}}` with its HTTP status.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let type: String
    public let message: String
    public let param: String?
    public let retryAfter: Int?
    /// The method a 405 names in its `Allow` header.
    var allow: HTTPRequest.Method?

    public init(status: HTTPResponse.Status, type: String, message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    public static func invalidRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .badRequest, type: "invalid_request_error", message: message, param: param)
    }

    /// A framing error names the part of the framing at fault as its `param`.
    init(_ error: HTTPFramingError) {
        self.init(status: error.status, type: error.status == .badRequest ? "invalid_request_error" : "request_too_large",
                  message: error.message, param: error.framing)
    }

    /// A known path asked with a method it does not answer.
    static func methodNotAllowed(_ endpoint: APIEndpoint, asked: HTTPRequest.Method) -> APIError {
        var e = APIError(status: .methodNotAllowed, type: "method_not_allowed",
                         message: "\(endpoint.path) answers \(endpoint.method.rawValue) only, not \(asked.rawValue)")
        e.allow = endpoint.method
        return e
    }

    static func from(_ error: QueryError) -> APIError {
        .invalidRequest(error.message, param: error.field)
    }

    static func from(_ error: ServiceError) -> APIError {
        if error.isBusy {
            return APIError(status: .serviceUnavailable, type: "server_busy", message: error.message, retryAfter: error.retryAfter)
        } else if error.isTooLong {
            return .invalidRequest(error.message, param: "max_tokens")
        } else if error.isShuttingDown {
            return APIError(status: .serviceUnavailable, type: "shutting_down", message: error.message, retryAfter: 5)
        }
        return APIError(status: .internalServerError, type: "server_error", message: error.message)
    }

    /// Maps any error thrown while handling a request.
    static func from(any error: Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as QueryError: return from(e)
        case let e as ServiceError: return from(e)
        case let e as HTTPFramingError: return APIError(e)
        case let e as HTTPParserError: return APIError(HTTPFramingError(e))
        case let e as HTTPError:
            switch e.status {
            case .notFound: return APIError(status: .notFound, type: "not_found", message: "no such endpoint")
            case .contentTooLarge:
                return APIError(status: .contentTooLarge, type: "request_too_large",
                                message: "the request body is larger than \(LocalAPIServer.maxBodyBytes) bytes")
            case .methodNotAllowed: return APIError(status: .methodNotAllowed, type: "method_not_allowed", message: "method not allowed here")
            default:
                let status = e.status
                return APIError(status: status, type: status.code >= 500 ? "server_error" : "invalid_request_error",
                                message: e.body ?? status.reasonPhrase)
            }
        case is NIOTooManyBytesError:
            return APIError(status: .contentTooLarge, type: "request_too_large",
                            message: "the request body is larger than \(LocalAPIServer.maxBodyBytes) bytes")
        case is CancellationError:
            return APIError(status: .serviceUnavailable, type: "cancelled", message: "the request was cancelled", retryAfter: 1)
        default:
            return APIError(status: .internalServerError, type: "server_error", message: String(describing: error))
        }
    }

    /// The JSON body.
    var body: Data {
        let inner: [String: JSONValue] = ["type": .string(type), "message": .string(message),
                                          "param": param.map { .string($0) } ?? .null, "code": .null]
        return Data(JSONValue.object(["error": .object(inner)]).encoded())
    }

    func response() -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow.rawValue }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error, including the router's 404, into an OpenAI-style JSON response; a 404 for
/// a known path asked with another method becomes a 405 (the router does not tell them apart).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            if let endpoint = APIEndpoint(rawValue: request.uri.path), endpoint.method != request.method {
                return APIError.methodNotAllowed(endpoint, asked: request.method).response()
            }
            return APIError.from(any: error).response()
        } catch {
            return APIError.from(any: error).response()
        }
    }
}
