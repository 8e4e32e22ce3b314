import CMosquitto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the MQTT client (libmosquitto, the broker URL, the connection and its queue).
/// Carries libmosquitto's return code and what was being done.
public struct MQTTError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case library
        case invalidURL
        case notConnected
        case queueFull
        case invalidConfiguration
    }

    private let code: Code
    /// libmosquitto's return code (`MOSQ_ERR_*`), when the error came from it.
    public let returnCode: Int32?
    public let operation: String
    public let detail: String

    private init(_ code: Code, returnCode: Int32?, operation: String, detail: String) {
        self.code = code
        self.returnCode = returnCode
        self.operation = operation
        self.detail = detail
    }

    public var description: String { "\(operation): \(detail)" }

    package static func mosquitto(_ rc: Int32, _ operation: String) -> MQTTError {
        let message: String
        if rc == Int32(MOSQ_ERR_ERRNO.rawValue), let s = strerror(errno) {
            message = String(cString: s)
        } else {
            message = String(cString: mosquitto_strerror(rc))
        }
        return MQTTError(.library, returnCode: rc, operation: operation, detail: "\(message) (rc \(rc))")
    }

    package static func notConnected(_ operation: String) -> MQTTError {
        MQTTError(.notConnected, returnCode: nil, operation: operation,
                      detail: "not connected to the broker; it is retried after the reconnect")
    }

    package static func queueFull(_ operation: String, limit: Int) -> MQTTError {
        MQTTError(.queueFull, returnCode: nil, operation: operation,
                      detail: "\(limit) messages already await the broker's acknowledgement; try again later")
    }

    package static func invalidConfiguration(_ detail: String) -> MQTTError {
        MQTTError(.invalidConfiguration, returnCode: nil, operation: "configure MQTT", detail: detail)
    }

    public var isNotConnected: Bool { code == .notConnected }
    public var isQueueFull: Bool { code == .queueFull }
    public var isInvalidURL: Bool { code == .invalidURL }
    public var isInvalidConfiguration: Bool { code == .invalidConfiguration }

    package static func invalidURL(_ url: String, _ why: String) -> MQTTError {
        MQTTError(.invalidURL, returnCode: nil, operation: "parse broker URL \"\(url)\"", detail: why)
    }
}
