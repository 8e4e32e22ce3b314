#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import OutpostCore

/// A small blocking HTTP/1.1 client over the agent's Unix socket, for `outpost ask` and
/// `outpost cache …`. Understands Content-Length, chunked bodies and read-to-close, and hands the
/// body over as it arrives (for server-sent events).
struct UnixSocketClient {
    let path: String
    var timeoutSeconds = 300

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    func request(_ method: String, _ target: String, body: Data? = nil,
                 onBody: ((Data) throws -> Void)? = nil) throws -> Response {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CLIError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw CLIError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw CLIError("cannot reach the agent at \(path): \(String(cString: strerror(errno))) (is `outpost run` running? --socket PATH)")
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: outpost\r\nConnection: close\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        var out = Data(head.utf8)
        if let body { out.append(body) }
        try out.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw CLIError("send to \(path): \(String(cString: strerror(errno)))") }
                sent += n
            }
        }

        var reader = Reader(fd: fd)
        let statusLine = try reader.line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw CLIError("bad HTTP status line from the agent: \(statusLine)")
        }
        var headers: [String: String] = [:]
        while true {
            let l = try reader.line()
            if l.isEmpty { break }
            if let colon = l.firstIndex(of: ":") {
                headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingWhitespace()
            }
        }
        var body = Data()
        func deliver(_ d: Data) throws {
            if let onBody { try onBody(d) } else { body.append(d) }
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try reader.line()
                guard let size = Int(sizeLine.split(separator: ";")[0].trimmingWhitespace(), radix: 16) else {
                    throw CLIError("bad chunk size from the agent: \(sizeLine)")
                }
                if size == 0 { break }
                try deliver(try reader.exactly(size))
                _ = try reader.line()
            }
        } else if let length = headers["content-length"].flatMap(Int.init) {
            try deliver(try reader.exactly(length))
        } else {
            while let d = try reader.some() { try deliver(d) }
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Buffered reads from the socket.
    struct Reader {
        let fd: Int32
        var buffer = Data()

        mutating func fill() throws -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16384)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 { throw CLIError("reading from the agent: \(String(cString: strerror(errno)))") }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }

        mutating func line() throws -> String {
            while true {
                if let i = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    var lineData = buffer[buffer.startIndex..<i]
                    if lineData.last == UInt8(ascii: "\r") { lineData = lineData.dropLast() }
                    buffer = Data(buffer[(i + 1)...])
                    return String(decoding: lineData, as: UTF8.self)
                }
                guard try fill() else { throw CLIError("the agent closed the connection early") }
            }
        }

        mutating func exactly(_ n: Int) throws -> Data {
            while buffer.count < n {
                guard try fill() else { throw CLIError("the agent closed the connection early") }
            }
            let out = Data(buffer.prefix(n))
            buffer = Data(buffer.dropFirst(n))
            return out
        }

        mutating func some() throws -> Data? {
            if buffer.isEmpty, !(try fill()) { return nil }
            defer { buffer = Data() }
            return buffer
        }
    }
}
