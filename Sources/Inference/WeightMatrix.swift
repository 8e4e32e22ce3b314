import CQuants
import GGUF

/// A weight matrix: `rows` rows of `columns` elements of one ggml type, each `rowBytes` long.
/// `y = W x` dots every row with `x`. Used in place from the mapped GGUF file, or, where the
/// kernel path runs the repacked layout of the type faster (avx2, avx512-vnni and neon-dotprod:
/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q6_K, see cquants.h), repacked at load time into memory
/// it owns (eight rows interleaved block by block; the same size), after which the file's pages of
/// the tensor are dropped from memory.
struct WeightMatrix: @unchecked Sendable {
    let name: String
    let type: Int32
    let base: UnsafeRawPointer
    let rows: Int
    let columns: Int
    let rowBytes: Int
    /// The type activations are converted to before the dot products (CQuants' type table: Q8_0,
    /// Q8_1 or Q8_K for the block types, F32 for float weights), as ggml does.
    let activationType: Int32
    /// The repacked copy `base` points into, when the matrix was repacked (keeps it alive).
    private let repacked: RepackedWeights?
    /// The file's bytes a repacked matrix was copied from (no longer read), else nil.
    let repackedFrom: UnsafeRawBufferPointer?
    /// Whether `base` holds the repacked layout (row ranges of `multiply` must then be whole
    /// groups of `rowGranule` rows).
    var isRepacked: Bool { repacked != nil }
    /// Row ranges given to `multiply` must start and end at multiples of this.
    var rowGranule: Int { repacked != nil ? Int(CQ_REPACK_ROWS) : 1 }

    /// The tensor `name` of `file`, checked to be `rows` x `columns`, or the rows `slice` of it (a
    /// part of a fused matrix, e.g. K of `attn_qkv`); repacked when `repack` is set and the active
    /// kernel path prefers it for the type.
    init(file: GGUFFile, name: String, columns: Int, rows: Int, slice: Range<Int>? = nil, repack: Bool = true) throws {
        guard let info = file.tensor(named: name) else { throw InferenceError.missingTensor(name) }
        guard info.dimensions.count == 2, info.dimensions[0] == columns, info.dimensions[1] == rows else {
            throw InferenceError.badTensorShape(name, expected: [columns, rows], found: info.dimensions)
        }
        guard cq_type_supported(Int32(info.type.rawValue)) != 0 else {
            throw InferenceError.unsupportedTensorType(name, type: info.type.name)
        }
        var data: UnsafeRawBufferPointer
        do { data = try file.data(for: info) } catch { throw InferenceError.unsupportedTensorType(name, type: info.type.name) }
        let rowBytes = cq_row_size(Int32(info.type.rawValue), Int64(columns))
        guard rowBytes > 0, rowBytes * rows == data.count else {
            throw InferenceError.badTensorShape(name, expected: [columns, rows], found: info.dimensions)
        }
        let part = slice ?? 0..<rows
        precondition(part.lowerBound >= 0 && part.upperBound <= rows, "slice \(part) of \(rows) rows")
        data = UnsafeRawBufferPointer(rebasing: data[(part.lowerBound * rowBytes)..<(part.upperBound * rowBytes)])
        self.name = slice == nil ? name : "\(name)[\(part.lowerBound)..<\(part.upperBound)]"
        self.type = Int32(info.type.rawValue)
        self.rows = part.count
        self.columns = columns
        self.rowBytes = rowBytes
        let rows = part.count
        self.activationType = cq_vec_dot_type(type)
        if repack, cq_repack_preferred(type) != 0, cq_repacked_size(type, Int64(rows), Int64(columns)) == data.count,
           let copy = RepackedWeights(type: type, plain: data, rowBytes: rowBytes, rows: rows, columns: columns,
                                      consumed: { file.discardPages(of: $0) }) {
            self.repacked = copy
            self.repackedFrom = data
            self.base = UnsafeRawPointer(copy.pointer)
        } else {
            self.repacked = nil
            self.repackedFrom = nil
            self.base = data.baseAddress!
        }
    }

    /// Bytes one activation row of `columns` elements takes once converted for this matrix.
    var activationRowBytes: Int { cq_row_size(activationType, Int64(columns)) }

    /// Row `r` as f32.
    @_optimize(speed)
    func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if repacked != nil {
            _ = cq_dequantize_row_repacked(type, base, Int64(columns), Int64(r), out)
        } else {
            _ = cq_dequantize_row(type, base + r * rowBytes, out, Int64(columns))
        }
    }

    /// `out[t * outStride + r] = dot(row r, x_t)` for rows in `rowRange` and every one of the
    /// `tokens` activation rows (already converted, `xStride` bytes apart), by one cq_matmul: the
    /// kernel tiles rows and tokens so a weight block is read and unpacked once for several tokens.
    /// A repacked matrix needs `rowRange` in whole groups of `rowGranule` rows.
    @_optimize(speed)
    func multiply(rows rowRange: Range<Int>, activations x: UnsafeRawPointer, xStride: Int, tokens: Int,
                  out: UnsafeMutablePointer<Float>, outStride: Int) {
        if repacked != nil {
            let (lo, hi) = (Int64(rowRange.lowerBound), Int64(rowRange.upperBound))
            // The SIMD kernel can only fail to allocate its scratch; the reference needs none.
            if cq_matmul_repacked(type, base, x, xStride, out, outStride, Int64(columns), lo, hi, Int64(tokens)) != 0 {
                let rc = cq_matmul_repacked_scalar(type, base, x, xStride, out, outStride, Int64(columns), lo, hi, Int64(tokens))
                precondition(rc == 0, "repacked mat-mat of \(name): rows \(rowRange) are not whole groups")
            }
        } else {
            _ = cq_matmul(type, base, rowBytes, x, xStride, out, outStride, Int64(columns),
                          Int64(rowRange.lowerBound), Int64(rowRange.upperBound), Int64(tokens))
        }
    }
}

/// Memory holding one matrix in the repacked layout (64-byte aligned), freed with the last
/// `WeightMatrix` using it.
final class RepackedWeights: @unchecked Sendable {
    // @unchecked: written once in init, read-only afterwards.
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    /// Rows repacked per step: whole groups, about 4 MiB of the plain matrix.
    static func chunkRows(rowBytes: Int) -> Int {
        let group = Int(CQ_REPACK_ROWS)
        return max(1, (4 << 20) / max(1, rowBytes * group)) * group
    }

    /// Repacks `plain` (rows `rowBytes` apart); nil when the layout does not take this matrix.
    /// The rows are repacked a chunk at a time and each chunk of `plain` handed to `consumed` once
    /// copied (the loader drops its file pages), so the plain and repacked forms of a large matrix
    /// are never both resident: Gemma 3's 178 MB tied embedding would otherwise double for a
    /// moment and set the process's peak memory.
    init?(type: Int32, plain: UnsafeRawBufferPointer, rowBytes: Int, rows: Int, columns: Int,
          consumed: (UnsafeRawBufferPointer) -> Void = { _ in }) {
        let size = cq_repacked_size(type, Int64(rows), Int64(columns))
        guard size > 0, let source = plain.baseAddress else { return nil }
        pointer = .allocate(byteCount: size, alignment: 64)
        byteCount = size
        let step = Self.chunkRows(rowBytes: rowBytes)
        var row = 0
        while row < rows {
            let end = min(rows, row + step)
            guard cq_repack(type, source, rowBytes, pointer, Int64(columns), Int64(row), Int64(end)) == 0 else {
                pointer.deallocate()
                return nil
            }
            consumed(UnsafeRawBufferPointer(rebasing: plain[(row * rowBytes)..<(end * rowBytes)]))
            row = end
        }
    }

    deinit { pointer.deallocate() }
}
