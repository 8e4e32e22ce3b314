#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A raw client connection to a Unix socket, for tests that send what no HTTP client would: a
/// half-sent head, a broken chunk size line, an HTTP/1.0 request, or nothing at all. Blocking,
/// with deadlines on every read.
public final class UnixSocketConnection: @unchecked Sendable {
    // @unchecked: used from one test at a time; `fd` is closed once.
    private var fd: Int32
    private var buffered: [UInt8] = []

    public struct ConnectionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Connects to the socket at `path`.
    public init(path: String) throws {
        // Close-on-exec: other tests spawn processes all the time, and a child that inherited
        // this socket would keep the connection open after `close()`, so the agent would never
        // see the client leave.
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConnectionError(description: "socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(107)) + [0]
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            fd = -1
            throw ConnectionError(description: "connect \(path): \(message)")
        }
        // Writes never block a test for long: a server that stops reading fails the send.
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends all of `bytes`; throws if the server closed the connection.
    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ConnectionError(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// What arrives within `timeout` seconds: nil when the server closed the connection (or reset
    /// it) with nothing more to read, an empty array when nothing came in time.
    public func receive(timeout: Double) -> [UInt8]? {
        if !buffered.isEmpty {
            defer { buffered = [] }
            return buffered
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(max(0, timeout * 1000)))
        guard ready > 0 else { return [] }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n < 0, errno == EAGAIN || errno == EINTR { return [] }
        guard n > 0 else { return nil }
        return Array(chunk[..<n])
    }

    /// Reads until the server closes the connection or `timeout` seconds pass. `closed` says
    /// which happened.
    public func readToEnd(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var out: [UInt8] = []
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return (out, false) }
            guard let more = receive(timeout: left) else { return (out, true) }
            out += more
        }
    }

    /// Whether the server closes the connection within `timeout` seconds (anything it sends in
    /// the meantime is read and dropped).
    public func closesWithin(_ timeout: Double) -> Bool { readToEnd(timeout: timeout).closed }

    /// One HTTP/1.x response: the head, then a body framed by Content-Length, chunked coding, or
    /// the end of the connection. Throws when no complete response arrives within `timeout`.
    public func readResponse(timeout: Double = 30) throws -> RawHTTPResponse {
        let deadline = Date().addingTimeInterval(timeout)
        var data: [UInt8] = []
        var closed = false
        func more() throws {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                throw ConnectionError(description: "no complete response within \(timeout) s; got \(String(decoding: data.prefix(300), as: UTF8.self))")
            }
            guard let bytes = receive(timeout: left) else {
                closed = true
                return
            }
            data += bytes
        }
        var headEnd: Int?
        while headEnd == nil {
            if let r = Self.find([13, 10, 13, 10], in: data) { headEnd = r; break }
            if closed { throw ConnectionError(description: "closed before a response head; got \(String(decoding: data.prefix(300), as: UTF8.self))") }
            try more()
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ConnectionError(description: "bad status line \(statusLine)") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var rest = Array(data[(headEnd! + 4)...])
        var body: [UInt8] = []
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            while rest.count < length {
                if closed { throw ConnectionError(description: "closed after \(rest.count) of \(length) body bytes") }
                let before = data.count
                try more()
                rest += data[before...]
            }
            body = Array(rest[..<length])
            buffered = Array(rest[length...]) + buffered
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                if let (decoded, used) = Self.dechunk(rest) {
                    body = decoded
                    buffered = Array(rest[used...]) + buffered
                    break
                }
                if closed { throw ConnectionError(description: "closed inside a chunked body") }
                let before = data.count
                try more()
                rest += data[before...]
            }
        } else {
            while !closed {
                let before = data.count
                try more()
                rest += data[before...]
            }
            body = rest
        }
        return RawHTTPResponse(statusLine: statusLine, status: status, headers: headers, body: body)
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// A complete chunked body decoded, and how many bytes it took; nil while incomplete.
    static func dechunk(_ bytes: [UInt8]) -> ([UInt8], Int)? {
        var i = 0
        var out: [UInt8] = []
        while true {
            guard let lineEnd = find([13, 10], in: Array(bytes[i...])) else { return nil }
            let sizeText = String(decoding: bytes[i..<(i + lineEnd)], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            i += lineEnd + 2
            if size == 0 {
                guard let end = find([13, 10], in: Array(bytes[i...])) else { return nil }
                return (out, i + end + 2)
            }
            guard bytes.count >= i + size + 2 else { return nil }
            out += bytes[i..<(i + size)]
            i += size + 2
        }
    }
}

/// A response read by `UnixSocketConnection.readResponse`.
public struct RawHTTPResponse: Sendable {
    public let statusLine: String
    public let status: Int
    /// Lower-cased names.
    public let headers: [String: String]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
    /// `error.param` and `error.message` of an OpenAI-style error body.
    public var errorParam: String? { (json?["error"] as? [String: Any])?["param"] as? String }
    public var errorMessage: String? { (json?["error"] as? [String: Any])?["message"] as? String }
}
