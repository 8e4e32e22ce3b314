import CQuants
import GGUF

/// A weight matrix used in place from the mapped GGUF file: `rows` rows of `columns` elements of
/// one ggml type, each `rowBytes` long. `y = W x` dots every row with `x`.
struct WeightMatrix: @unchecked Sendable {
    let name: String
    let type: Int32
    let base: UnsafeRawPointer
    let rows: Int
    let columns: Int
    let rowBytes: Int
    /// The type activations are converted to before the dot products (Q8_1 for Q4_1, Q8_0 for
    /// Q4_0 and Q8_0, F32 for float weights), as ggml does.
    let activationType: Int32
    let dot: @convention(c) (Int64, UnsafeRawPointer?, UnsafeRawPointer?) -> Float

    static let supportedTypes: Set<GGMLType> = [.f32, .f16, .q4_0, .q4_1, .q8_0]

    init(file: GGUFFile, name: String, columns: Int, rows: Int) throws {
        guard let info = file.tensor(named: name) else { throw InferenceError.missingTensor(name) }
        guard info.dimensions.count == 2, info.dimensions[0] == columns, info.dimensions[1] == rows else {
            throw InferenceError.badTensorShape(name, expected: [columns, rows], found: info.dimensions)
        }
        guard Self.supportedTypes.contains(info.type) else {
            throw InferenceError.unsupportedTensorType(name, type: info.type.name)
        }
        let data: UnsafeRawBufferPointer
        do { data = try file.data(for: info) } catch { throw InferenceError.unsupportedTensorType(name, type: info.type.name) }
        self.name = name
        self.type = Int32(info.type.rawValue)
        self.base = data.baseAddress!
        self.rows = rows
        self.columns = columns
        self.rowBytes = cq_row_size(Int32(info.type.rawValue), Int64(columns))
        guard rowBytes > 0, rowBytes * rows == data.count else {
            throw InferenceError.badTensorShape(name, expected: [columns, rows], found: info.dimensions)
        }
        self.activationType = cq_vec_dot_type(type)
        switch info.type {
        case .q4_0: dot = cq_vec_dot_q4_0_q8_0
        case .q4_1: dot = cq_vec_dot_q4_1_q8_1
        case .q8_0: dot = cq_vec_dot_q8_0_q8_0
        case .f16: dot = cq_vec_dot_f16_f32
        default: dot = cq_vec_dot_f32_f32
        }
    }

    /// Bytes one activation row of `columns` elements takes once converted for this matrix.
    var activationRowBytes: Int { cq_row_size(activationType, Int64(columns)) }

    /// Row `r` as f32.
    @_optimize(speed)
    func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        _ = cq_dequantize_row(type, base + r * rowBytes, out, Int64(columns))
    }

    /// `out[t * outStride + r] = dot(row r, x_t)` for rows in `rowRange` and every one of the
    /// `tokens` activation rows (already converted, `xStride` bytes apart), by one cq_matmul: the
    /// kernel tiles rows and tokens so a weight block is read and unpacked once for several tokens.
    @_optimize(speed)
    func multiply(rows rowRange: Range<Int>, activations x: UnsafeRawPointer, xStride: Int, tokens: Int,
                  out: UnsafeMutablePointer<Float>, outStride: Int) {
        _ = cq_matmul(type, base, rowBytes, x, xStride, out, outStride, Int64(columns),
                      Int64(rowRange.lowerBound), Int64(rowRange.upperBound), Int64(tokens))
    }
}
