import FoundationEssentials
import OutpostCore
#if canImport(Glibc)
import Glibc
#endif

/// The text files Outpost keeps Ed25519 keys in (fleet keys, gateway member keys):
///
/// ```
/// outpost-fleet-public-key v1
/// key_id: ops-2026
/// ed25519: <base64 of the 32-byte raw key>
/// ```
///
/// The first line names what the file holds; private keys are written with mode 0600.
public enum KeyFile {
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public let path: String
        public let what: String
        public var description: String { "key file \(path): \(what)" }

        public init(path: String, what: String) {
            self.path = path
            self.what = what
        }
    }

    public static func text(header: String, keyID: String, raw: [UInt8]) -> String {
        "\(header)\nkey_id: \(keyID)\ned25519: \(Data(raw).base64EncodedString())\n"
    }

    /// The key id and the 32 raw key bytes of the file at `path`, whose first line must be `header`.
    public static func read(path: String, header: String) throws(KeyFile.Error) -> (keyID: String, raw: Data) {
        guard let data = FileManager.default.contents(atPath: path) else { throw Error(path: path, what: "cannot be read") }
        guard data.count < 4096, let text = String(data: data, encoding: .utf8) else {
            throw Error(path: path, what: "not a key file")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        guard lines.first == header else { throw Error(path: path, what: "the first line must be \"\(header)\"") }
        var keyID: String?
        var raw: Data?
        for line in lines.dropFirst() where !line.isEmpty {
            if line.hasPrefix("key_id:") {
                keyID = line.dropFirst(7).trimmingWhitespace()
            } else if line.hasPrefix("ed25519:") {
                raw = Data(base64Encoded: line.dropFirst(8).trimmingWhitespace())
                if raw == nil { throw Error(path: path, what: "the ed25519 line is not base64") }
            } else {
                throw Error(path: path, what: "unexpected line \"\(line.prefix(40))\"")
            }
        }
        guard let keyID, !keyID.isEmpty else { throw Error(path: path, what: "no key_id line") }
        guard let raw, raw.count == 32 else { throw Error(path: path, what: "the ed25519 line must hold 32 bytes") }
        return (keyID, raw)
    }

    /// Writes `text` to `path` with `mode` (set even when the file existed), durably.
    public static func write(_ text: String, to path: String, mode: mode_t) throws(KeyFile.Error) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Error(path: path, what: "cannot be created: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw Error(path: path, what: "cannot set its mode") }
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
        guard ok, fsync(fd) == 0 else { throw Error(path: path, what: "cannot be written: \(String(cString: strerror(errno)))") }
    }
}
