import CZstd

/// A thin wrapper over libzstd's one-shot API. Decompression is always bounded: a frame whose
/// declared content size exceeds `limit` is refused before any memory is allocated for it, and a
/// frame that does not declare its size is streamed and refused as soon as it passes `limit`.
public enum Zstd {
    public static let defaultLevel: Int32 = 3

    public static func compress(_ input: [UInt8], level: Int32 = defaultLevel) throws(AnswerCacheError) -> [UInt8] {
        try Compressor(level: level).compress(input)
    }

    /// A compression context kept across calls (allocating one per call costs more than
    /// compressing a short answer). One owner at a time.
    public final class Compressor {
        private let context: OpaquePointer
        public let level: Int32

        public init(level: Int32 = Zstd.defaultLevel) throws(AnswerCacheError) {
            guard let context = ZSTD_createCCtx() else { throw .compression("cannot allocate a context") }
            self.context = context
            self.level = level
        }

        deinit { ZSTD_freeCCtx(context) }

        public func compress(_ input: [UInt8]) throws(AnswerCacheError) -> [UInt8] {
            try Zstd.compress(input, context: context, level: level)
        }
    }

    private static func compress(_ input: [UInt8], context: OpaquePointer, level: Int32) throws(AnswerCacheError) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        if ZSTD_isError(bound) != 0 { throw .compression(errorName(bound)) }
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { src in
                ZSTD_compressCCtx(context, out.baseAddress, out.count, src.baseAddress, src.count, level)
            }
        }
        if ZSTD_isError(written) != 0 { throw .compression(errorName(written)) }
        output.removeSubrange(written...)
        return output
    }

    public static func decompress(_ frame: [UInt8], limit: Int) throws(AnswerCacheError) -> [UInt8] {
        let declared = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared == czstd_contentsize_error() {
            throw .decompression("not a zstd frame (\(frame.count) bytes)")
        }
        if declared == czstd_contentsize_unknown() {
            return try decompressStreaming(frame, limit: limit)
        }
        guard declared <= UInt64(limit) else {
            throw .decompression("frame declares \(declared) bytes, over the limit of \(limit) bytes")
        }
        let size = Int(declared)
        // One spare byte so that a frame holding more than it declared is caught as too large.
        var output = [UInt8](repeating: 0, count: size + 1)
        let produced = output.withUnsafeMutableBytes { out in
            frame.withUnsafeBytes { src in ZSTD_decompress(out.baseAddress, out.count, src.baseAddress, src.count) }
        }
        if ZSTD_isError(produced) != 0 { throw .decompression(errorName(produced)) }
        guard produced == size else {
            throw .decompression("frame declared \(size) bytes but held \(produced)")
        }
        output.removeLast()
        return output
    }

    private static func decompressStreaming(_ frame: [UInt8], limit: Int) throws(AnswerCacheError) -> [UInt8] {
        guard let stream = ZSTD_createDStream() else { throw .decompression("cannot allocate a stream") }
        defer { ZSTD_freeDStream(stream) }
        var output: [UInt8] = []
        let chunkSize = ZSTD_DStreamOutSize()
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var failure: AnswerCacheError?
        frame.withUnsafeBytes { src in
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            while true {
                var produced = 0
                var remaining = 0
                chunk.withUnsafeMutableBytes { out in
                    var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    remaining = ZSTD_decompressStream(stream, &buffer, &input)
                    produced = buffer.pos
                }
                if ZSTD_isError(remaining) != 0 {
                    failure = .decompression(errorName(remaining))
                    return
                }
                if output.count + produced > limit {
                    failure = .decompression("output passes the limit of \(limit) bytes")
                    return
                }
                output.append(contentsOf: chunk[0..<produced])
                if remaining == 0 && input.pos == input.size { return }
                if input.pos == input.size && produced < chunkSize {
                    failure = .decompression("truncated frame")
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    private static func errorName(_ code: Int) -> String {
        String(cString: ZSTD_getErrorName(code))
    }
}
