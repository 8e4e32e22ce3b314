/// A PeerSync setting that cannot work (topic names, limits, files). Failures of the transport
/// itself are `MQTTError`s.
public struct PeerSyncError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case invalidConfiguration
        case unreadableFile
    }

    private let code: Code
    public let operation: String
    public let detail: String

    private init(_ code: Code, operation: String, detail: String) {
        self.code = code
        self.operation = operation
        self.detail = detail
    }

    public var description: String { "\(operation): \(detail)" }

    static func invalidConfiguration(_ detail: String) -> PeerSyncError {
        PeerSyncError(.invalidConfiguration, operation: "configure MQTT", detail: detail)
    }

    static func unreadableFile(_ path: String, _ why: String) -> PeerSyncError {
        PeerSyncError(.unreadableFile, operation: "read \(path)", detail: why)
    }

    public var isInvalidConfiguration: Bool { code == .invalidConfiguration }
}
