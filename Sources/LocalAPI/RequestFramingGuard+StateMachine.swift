extension RequestFramingGuard {
    /// The framing of the requests on one connection (RFC 9112 §6–7: Content-Length, the chunked
    /// transfer coding), followed byte by byte ahead of NIO's HTTP parser. A plain value: fed the
    /// bytes as they arrive, it says what to pass on; tested step by step without I/O.
    ///
    /// It does not parse requests otherwise (NIO's parser does). It only tracks where heads, bodies
    /// and chunk size lines are, so that it can refuse at once, and by name, what NIO's parser
    /// would wait on or report without saying what was wrong: a chunk size above the body limit
    /// (`7fffffffffffffff`: the parser would wait for 2^63 bytes until the idle timeout), a
    /// Content-Length above it, a chunk size line that is not hexadecimal (`zz`, `-5`), two
    /// lengths that disagree. Whatever it refuses, NIO's parser would refuse or wait on too; it
    /// never lets through a framing it does not understand, so the two cannot disagree about
    /// where one request ends and the next begins.
    struct StateMachine {
        enum Verdict: Equatable {
            /// Pass the whole buffer on.
            case forward
            /// Pass on the first `forwarding` bytes (whole requests or lines before the fault),
            /// then report `error`; everything after is discarded.
            case reject(HTTPFramingError, forwarding: Int)
            /// The connection already failed: pass nothing on.
            case discard
        }

        /// Longest chunk size line, extensions included.
        static let maxChunkLineBytes = 1024
        /// Largest trailer section after the last chunk.
        static let maxTrailerBytes = 8192
        /// How much of a header line is kept to read its name and value (a longer Content-Length
        /// or Transfer-Encoding line is refused; other long lines are NIO's parser's business).
        static let keptHeaderBytes = 1024

        private enum Phase: Equatable {
            case head
            case fixedBody(remaining: Int)
            case chunkSize
            case chunkData(remaining: Int)
            case chunkDataEnd(sawCR: Bool)
            case trailers
            case failed
        }

        let maxBodyBytes: Int
        private var phase = Phase.head
        /// The current line (without CR LF), up to `keptHeaderBytes`; `lineLength` is its full length.
        private var line: [UInt8] = []
        private var lineLength = 0
        private var lineSawCR = false

        // The head being read.
        private var sawRequestLine = false
        private var contentLength: Int?
        private var codings: [String] = []
        private var lastHeaderWasFraming = false

        // The chunked body being read.
        private var bodyBytes = 0
        private var chunkSize = 0
        private var chunkDigits = 0
        private var inChunkExtension = false
        private var trailerBytes = 0

        init(maxBodyBytes: Int) {
            self.maxBodyBytes = maxBodyBytes
        }

        mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Verdict {
            var i = 0
            // Where the current line began in this buffer (0 when it began in an earlier one):
            // a fault in a line forwards what came before it, never the line itself.
            var lineStart = 0
            while i < bytes.count {
                switch phase {
                case .failed:
                    return .discard

                case .fixedBody(let remaining):
                    let n = min(remaining, bytes.count - i)
                    i += n
                    phase = n == remaining ? .head : .fixedBody(remaining: remaining - n)
                    lineStart = i

                case .chunkData(let remaining):
                    let n = min(remaining, bytes.count - i)
                    i += n
                    phase = n == remaining ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - n)

                case .chunkDataEnd(let sawCR):
                    let b = bytes[i]
                    if b == Self.cr, !sawCR {
                        phase = .chunkDataEnd(sawCR: true)
                    } else if b == Self.lf {
                        phase = .chunkSize
                        startChunkLine()
                        lineStart = i + 1
                    } else {
                        return fail(.malformed("chunk-data", "a chunk's data is longer than its size line says (no CRLF after it)"),
                                    forwarding: i)
                    }
                    i += 1

                case .chunkSize:
                    if let verdict = chunkSizeStep(bytes, at: &i, lineStart: &lineStart) { return verdict }

                case .trailers:
                    if let verdict = trailerStep(bytes, at: &i, lineStart: &lineStart) { return verdict }

                case .head:
                    if let verdict = headStep(bytes, at: &i, lineStart: &lineStart) { return verdict }
                }
            }
            return .forward
        }

        /// One byte of a chunk size line; at its LF, on to the chunk's data or the trailers.
        private mutating func chunkSizeStep(_ bytes: UnsafeRawBufferPointer, at i: inout Int, lineStart: inout Int) -> Verdict? {
            let b = bytes[i]
            if let error = chunkSizeByte(b, bytes, at: i) {
                return fail(error, forwarding: lineStart)
            }
            i += 1
            if b == Self.lf {
                lineStart = i
                if chunkSize == 0 {
                    phase = .trailers
                    trailerBytes = 0
                } else {
                    bodyBytes += chunkSize
                    phase = .chunkData(remaining: chunkSize)
                }
                clearLine()
            }
            return nil
        }

        /// One byte of the trailer section; an empty line ends it, and the request.
        private mutating func trailerStep(_ bytes: UnsafeRawBufferPointer, at i: inout Int, lineStart: inout Int) -> Verdict? {
            let b = bytes[i]
            i += 1
            trailerBytes += 1
            guard trailerBytes <= Self.maxTrailerBytes else {
                return fail(.malformed("trailer", "the trailer section after the last chunk is longer than \(Self.maxTrailerBytes) bytes"),
                            forwarding: lineStart)
            }
            if b == Self.lf {
                let empty = lineLength == 0
                clearLine()
                lineStart = i
                if empty { finishRequest() }
            } else if b != Self.cr {
                lineLength += 1  // only the length matters: an empty line ends the trailers
            }
            return nil
        }

        /// One byte of a request's head; at each LF, the line it ends is read.
        private mutating func headStep(_ bytes: UnsafeRawBufferPointer, at i: inout Int, lineStart: inout Int) -> Verdict? {
            let b = bytes[i]
            i += 1
            if b != Self.lf {
                append(b)
                return nil
            }
            if let error = headLine() {
                return fail(error, forwarding: lineStart)
            }
            clearLine()
            lineStart = i
            return nil
        }

        // MARK: Lines

        private mutating func append(_ b: UInt8) {
            // A CR is part of the line ending only when LF follows; keep it pending until then.
            if lineSawCR {
                lineSawCR = false
                keep(Self.cr)
            }
            if b == Self.cr {
                lineSawCR = true
            } else {
                keep(b)
            }
        }

        private mutating func keep(_ b: UInt8) {
            lineLength += 1
            if line.count < Self.keptHeaderBytes { line.append(b) }
        }

        private mutating func clearLine() {
            line.removeAll(keepingCapacity: true)
            lineLength = 0
            lineSawCR = false
        }

        /// A complete head line (request line, header line or the empty line ending the head).
        private mutating func headLine() -> HTTPFramingError? {
            guard lineLength > 0 else {
                // Empty lines before a request line are allowed (RFC 9112 §2.2) and skipped.
                return sawRequestLine ? endOfHead() : nil
            }
            guard sawRequestLine else {
                sawRequestLine = true
                return nil
            }
            if line[0] == Self.space || line[0] == Self.tab {
                // Obsolete line folding continues the previous header's value: refused for the
                // two headers that frame the body, whose value must be read exactly.
                return lastHeaderWasFraming
                    ? .malformed("header", "a Content-Length or Transfer-Encoding header is folded over two lines")
                    : nil
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                lastHeaderWasFraming = false
                return nil  // NIO's parser refuses a header line without a colon
            }
            let rawName = line[..<colon]
            let name = String(decoding: rawName, as: UTF8.self).lowercased()
            let trimmedName = name.trimmingOWS
            let isLength = trimmedName == "content-length"
            let isCoding = trimmedName == "transfer-encoding"
            lastHeaderWasFraming = isLength || isCoding
            guard lastHeaderWasFraming else { return nil }
            let header = isLength ? "Content-Length" : "Transfer-Encoding"
            guard trimmedName == name else {
                return .malformed(header, "the \(header) header has whitespace before its colon")
            }
            guard lineLength <= Self.keptHeaderBytes else {
                return .malformed(header, "the \(header) header is longer than \(Self.keptHeaderBytes) bytes")
            }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingOWS
            return isLength ? contentLengthHeader(value) : transferEncodingHeader(value)
        }

        private mutating func contentLengthHeader(_ value: String) -> HTTPFramingError? {
            guard contentLength == nil else {
                return .malformed("Content-Length", "the request has more than one Content-Length header")
            }
            // Refused at the header, not at the end of the head: NIO's parser refuses the pair as
            // soon as it sees the second, and without naming it.
            guard codings.isEmpty else { return Self.bothLengths }
            guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return .malformed("Content-Length", "Content-Length \"\(Self.printable(Array(value.utf8)))\" is not a decimal number")
            }
            // Digits past the limit need no exact value: any such length is refused.
            var n = 0
            for d in value.utf8 {
                n = n * 10 + Int(d - UInt8(ascii: "0"))
                if n > maxBodyBytes {
                    return .bodyTooLarge("Content-Length",
                                         "the request body (Content-Length \(value.prefix(24))) is larger than \(maxBodyBytes) bytes")
                }
            }
            contentLength = n
            return nil
        }

        private mutating func transferEncodingHeader(_ value: String) -> HTTPFramingError? {
            guard contentLength == nil else { return Self.bothLengths }
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let coding = String(part).trimmingOWS.lowercased()
                if !coding.isEmpty { codings.append(coding) }
            }
            return nil
        }

        private mutating func endOfHead() -> HTTPFramingError? {
            defer { resetHead() }
            if !codings.isEmpty {
                guard codings == ["chunked"] else {
                    return .malformed("Transfer-Encoding",
                                      "Transfer-Encoding \"\(codings.joined(separator: ", ").prefix(64))\" is not supported: only chunked is")
                }
                bodyBytes = 0
                phase = .chunkSize
                startChunkLine()
            } else if let length = contentLength, length > 0 {
                phase = .fixedBody(remaining: length)
            }
            return nil
        }

        static let bothLengths = HTTPFramingError.malformed("Transfer-Encoding",
                                                            "the request has both Content-Length and Transfer-Encoding")

        private mutating func resetHead() {
            sawRequestLine = false
            contentLength = nil
            codings = []
            lastHeaderWasFraming = false
        }

        private mutating func finishRequest() {
            phase = .head
            bodyBytes = 0
            resetHead()
        }

        // MARK: Chunk size lines

        private mutating func startChunkLine() {
            clearLine()
            chunkSize = 0
            chunkDigits = 0
            inChunkExtension = false
        }

        /// One byte of a chunk size line: `1*HEXDIG [ chunk-ext ] CRLF`. A size that takes the
        /// body past the limit is refused at the digit that does it, before the line ends.
        private mutating func chunkSizeByte(_ b: UInt8, _ bytes: UnsafeRawBufferPointer, at i: Int) -> HTTPFramingError? {
            func preview() -> String { previewLine(bytes, after: i) }
            if lineSawCR, b != Self.lf {
                return .malformed("chunk-size", "the chunk size line \"\(preview())\" has a CR that is not followed by LF")
            }
            switch b {
            case Self.lf:
                guard chunkDigits > 0 else {
                    return .malformed("chunk-size", "the chunked body has an empty chunk size line where a size belongs")
                }
                return nil
            case Self.cr:
                lineSawCR = true
                return nil
            default:
                break
            }
            keep(b)
            guard lineLength <= Self.maxChunkLineBytes else {
                return .malformed("chunk-size", "a chunk size line is longer than \(Self.maxChunkLineBytes) bytes")
            }
            if inChunkExtension { return nil }
            if let d = Self.hexValue(b) {
                chunkDigits += 1
                chunkSize = chunkSize * 16 + d
                if bodyBytes + chunkSize > maxBodyBytes {
                    return .bodyTooLarge("chunk-size",
                                         "the chunk size 0x\(preview()) takes the request body past the limit of \(maxBodyBytes) bytes")
                }
                return nil
            }
            if chunkDigits > 0, b == UInt8(ascii: ";") || b == Self.space || b == Self.tab {
                inChunkExtension = true
                return nil
            }
            return .malformed("chunk-size", "the chunk size \"\(preview())\" is not a hexadecimal number")
        }

        // MARK: Helpers

        static let cr: UInt8 = 0x0D
        static let lf: UInt8 = 0x0A
        static let space: UInt8 = 0x20
        static let tab: UInt8 = 0x09

        private static func hexValue(_ b: UInt8) -> Int? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b - UInt8(ascii: "A")) + 10
            default: nil
            }
        }

        /// The chunk size line for a message: what was kept of it, then this buffer after `i` to
        /// the line's end, at most 40 bytes, non-printable bytes escaped.
        private func previewLine(_ bytes: UnsafeRawBufferPointer, after i: Int) -> String {
            var out = Array(line.prefix(40))
            var j = i + 1
            while out.count < 40, j < bytes.count, bytes[j] != Self.cr, bytes[j] != Self.lf {
                out.append(bytes[j])
                j += 1
            }
            return Self.printable(out)
        }

        static func printable(_ bytes: [UInt8]) -> String {
            var s = ""
            for b in bytes.prefix(64) {
                if (0x20..<0x7F).contains(b), b != UInt8(ascii: "\"") {
                    s.unicodeScalars.append(Unicode.Scalar(b))
                } else {
                    s += "\\x" + String(b, radix: 16, uppercase: false).leftPadded(to: 2)
                }
            }
            return s
        }

        private mutating func fail(_ error: HTTPFramingError, forwarding: Int) -> Verdict {
            phase = .failed
            return .reject(error, forwarding: forwarding)
        }
    }
}

private extension String {
    /// Without the optional whitespace (SP, HTAB) HTTP allows around field values.
    var trimmingOWS: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(scalars[first...last])
    }

    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
