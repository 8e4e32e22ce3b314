import CZstd

/// Compresses with the streaming API and no pledged size, so the frame header declares no content
/// size (what `ZSTD_getFrameContentSize` reports as unknown).
func streamingFrame(_ content: [UInt8]) throws -> [UInt8] {
    let stream = ZSTD_createCStream()!
    defer { ZSTD_freeCStream(stream) }
    ZSTD_initCStream(stream, 3)
    var output = [UInt8](repeating: 0, count: ZSTD_compressBound(content.count) + 64)
    var written = 0
    content.withUnsafeBytes { src in
        output.withUnsafeMutableBytes { dst in
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            var out = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
            while input.pos < input.size { _ = ZSTD_compressStream(stream, &out, &input) }
            while ZSTD_endStream(stream, &out) != 0 {}
            written = out.pos
        }
    }
    return Array(output[0..<written])
}
