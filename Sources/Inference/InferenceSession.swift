import CQuants
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Evaluation state for one sequence: the KV cache (f16), scratch buffers and a thread pool.
/// Tokens are appended with `evaluate`; the forward pass follows llama.cpp's graphs (RMSNorm,
/// RoPE, grouped-query attention, a gated feed-forward) with what the model's `Architecture` adds
/// (biases, Q/K norms, sublayer output norms, sliding windows, soft-cap), with activations
/// converted to Q8_0/Q8_1/Q8_K for the integer dot products as ggml does.
///
/// Not thread-safe: one caller at a time.
public final class InferenceSession {
    public let model: LanguageModel
    /// Tokens the KV cache holds at most.
    public let contextLength: Int
    /// Tokens evaluated so far (the next token's position).
    public var position: Int { cachedTokens.count }
    /// The tokens whose keys and values the cache holds, in order (`position` of them).
    public private(set) var cachedTokens: [Int32] = []
    /// Threads used by the forward pass, the caller included.
    public var threadCount: Int { pool.activeCount }

    /// Tokens evaluated per forward step of a batch.
    static let maxBatch = 32
    /// Tokens the cache holds when not told (or the model's context length, if shorter).
    public static let defaultContextLength = 2048

    private let pool: ThreadPool
    private let config: ModelConfig
    private let architecture: Architecture
    // KV cache, layer after layer. Layer l holds kvCapacity[l] positions from kvBase[l] on, at
    // element offset kvOffset[l]: keys [kvCapacity[l]][kvDim], values transposed
    // [kvDim][kvCapacity[l]]. A global layer holds every position (capacity contextLength, base 0);
    // a sliding-window layer only the window plus room for a batch, its base moving forward as
    // positions leave the window (Gemma 3: 512 + 512 positions instead of the whole context).
    private let keys: UnsafeMutablePointer<UInt16>
    private let values: UnsafeMutablePointer<UInt16>
    private let kvOffset: [Int]
    private let kvCapacity: [Int]
    private var kvBase: [Int]
    // Scratch, sized for maxBatch tokens (b = maxBatch, rows of one token back to back).
    private let x: UnsafeMutablePointer<Float>     // [b][embeddingLength] the residual stream
    private let xn: UnsafeMutablePointer<Float>    // [b][max(embeddingLength, queryDimension)] normed input of a matrix
    private let q: UnsafeMutablePointer<Float>     // [b][queryDimension]
    private let k: UnsafeMutablePointer<Float>     // [b][kvDimension]
    private let v: UnsafeMutablePointer<Float>     // [b][kvDimension]
    private let attn: UnsafeMutablePointer<Float>  // [b][queryDimension] attention output, heads back to back
    private let gate: UnsafeMutablePointer<Float>  // [b][feedForwardLength], then act(gate) * up
    private let up: UnsafeMutablePointer<Float>    // [b][feedForwardLength]
    private let tmp: UnsafeMutablePointer<Float>   // [b][embeddingLength] a sublayer's output
    /// RoPE cos/sin per distinct (base, scale) of the layers: [b][ropeDimensionCount / 2] each.
    private let ropeTables: [(cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>)]
    /// Which of `ropeTables` layer l uses.
    private let ropeTableOfLayer: [Int]
    private let ropeParameters: [(base: Float, scale: Float)]
    /// Converted activations, one buffer per activation type in use: [b][row of that type].
    private var activationBuffers: [Int32: (pointer: UnsafeMutableRawPointer, rowBytes: Int)] = [:]
    /// Per-thread attention scratch: scores, probabilities and the rounded queries of a KV head's
    /// group of query heads.
    private let attentionScratch: UnsafeMutablePointer<Float>
    private let attentionScratchStride: Int
    /// The gated feed-forward output converted for the down projection (allocated at first use).
    private var downActivations: UnsafeMutableRawPointer?
    /// [logitsRows][vocabularySize]
    private var logitsBuffer: UnsafeMutablePointer<Float>
    private var logitsRows: Int

    /// - Parameters:
    ///   - contextLength: tokens to make room for (default: `defaultContextLength`); capped at the
    ///     model's own context length.
    ///   - threads: forward-pass threads, the caller included (default: the online CPUs, at most 8).
    public init(model: LanguageModel, contextLength: Int? = nil, threads: Int? = nil) throws {
        self.model = model
        self.config = model.config
        let ctx = min(contextLength ?? Self.defaultContextLength, config.contextLength)
        guard ctx > 0 else { throw InferenceError.invalidArgument("contextLength", "must be positive") }
        self.contextLength = ctx
        let t = threads ?? min(8, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        guard t > 0 else { throw InferenceError.invalidArgument("threads", "must be positive") }
        pool = ThreadPool(threads: t)

        self.architecture = model.architecture
        var offsets: [Int] = [], capacities: [Int] = [], total = 0
        for l in 0..<config.layerCount {
            var capacity = ctx
            if config.isSlidingWindowLayer(l), let window = config.slidingWindow {
                // the window, plus room to append a batch (at least maxBatch) before the oldest
                // positions are moved out: one move per `capacity - window + 1` positions
                capacity = min(ctx, window + max(window, Self.maxBatch))
            }
            offsets.append(total)
            capacities.append(capacity)
            total += capacity * config.kvDimension
        }
        kvOffset = offsets
        kvCapacity = capacities
        kvBase = Array(repeating: 0, count: config.layerCount)
        keys = .allocate(capacity: total)
        values = .allocate(capacity: total)
        keys.initialize(repeating: 0, count: total)
        values.initialize(repeating: 0, count: total)

        let b = Self.maxBatch
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        x = buffer(b * config.embeddingLength)
        xn = buffer(b * max(config.embeddingLength, config.queryDimension))
        q = buffer(b * config.queryDimension)
        k = buffer(b * config.kvDimension)
        v = buffer(b * config.kvDimension)
        attn = buffer(b * config.queryDimension)
        gate = buffer(b * config.feedForwardLength)
        up = buffer(b * config.feedForwardLength)
        tmp = buffer(b * config.embeddingLength)
        var parameters: [(base: Float, scale: Float)] = [], tableOfLayer: [Int] = []
        for l in 0..<config.layerCount {
            let r = config.rope(layer: l)
            if let i = parameters.firstIndex(where: { $0 == r }) {
                tableOfLayer.append(i)
            } else {
                tableOfLayer.append(parameters.count)
                parameters.append(r)
            }
        }
        ropeParameters = parameters
        ropeTableOfLayer = tableOfLayer
        let pairs = b * model.config.ropeDimensionCount / 2
        ropeTables = parameters.map { _ in (buffer(pairs), buffer(pairs)) }
        // cq_attend_f16_group's scratch for a whole group of query heads (plus alignment slack)
        let group = config.headCount / config.kvHeadCount
        attentionScratchStride = group * (2 * ctx + config.headDimension) + 16
        attentionScratch = buffer(pool.activeCount * attentionScratchStride)
        logitsRows = 1
        logitsBuffer = buffer(config.vocabularySize)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        for p in [x, xn, q, k, v, attn, gate, up, tmp, attentionScratch, logitsBuffer] {
            p.deallocate()
        }
        for t in ropeTables {
            t.cos.deallocate()
            t.sin.deallocate()
        }
        for (_, b) in activationBuffers { b.pointer.deallocate() }
        downActivations?.deallocate()
    }

    /// Forgets every evaluated token.
    public func reset() {
        cachedTokens.removeAll(keepingCapacity: true)
        for l in kvBase.indices { kvBase[l] = 0 }
    }

    /// Forgets the tokens from `newPosition` on (keeps a shared prompt prefix). When a
    /// sliding-window layer has already dropped positions the kept tokens' successors would
    /// attend to (a window reaching before its oldest cached position), forgets everything.
    public func truncate(to newPosition: Int) {
        let target = max(0, min(position, newPosition))
        if let window = config.slidingWindow {
            for l in kvBase.indices where kvBase[l] > 0 && target - (window - 1) < kvBase[l] {
                reset()
                return
            }
        }
        cachedTokens.removeLast(position - target)
    }

    /// Prepares the cache for `prompt`: keeps the longest prefix of the cached tokens that
    /// `prompt` starts with (at most `prompt.count - 1` tokens, so that at least one token is
    /// evaluated and gives logits), forgets the rest, and returns how many tokens it kept (0 when a
    /// sliding window has moved past what the rest needs, see `truncate`). Evaluate
    /// `prompt[kept...]` next. The logits are the same as a fresh evaluation of the whole prompt:
    /// every token's forward pass is independent of the batch it was evaluated in (the kernels sum
    /// each (row, token) pair in the same order whatever the batch; attention is per token).
    public func reusePrefix(of prompt: [Int32]) -> Int {
        let limit = min(cachedTokens.count, prompt.count - 1)
        var kept = 0
        while kept < limit && cachedTokens[kept] == prompt[kept] { kept += 1 }
        truncate(to: kept)
        return position
    }

    /// Evaluates `tokens` after the ones already in the cache and returns the logits that follow
    /// the last of them.
    public func evaluate(_ tokens: [Int32], isCancelled: () -> Bool = { false }) throws -> [Float] {
        var last: [Float] = []
        try evaluate(tokens, allLogits: false, isCancelled: isCancelled) { _, logits in last = Array(logits) }
        return last
    }

    /// Evaluates `tokens` in batches of up to `maxBatch`. `body(i, logits)` receives the logits
    /// after token i for every i when `allLogits`, else only for the last token.
    public func evaluate(_ tokens: [Int32], allLogits: Bool, isCancelled: () -> Bool = { false },
                         body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard !tokens.isEmpty else { return }
        for t in tokens where t < 0 || Int(t) >= config.vocabularySize {
            throw InferenceError.tokenOutOfRange(Int(t), vocabularySize: config.vocabularySize)
        }
        guard position + tokens.count <= contextLength else {
            throw InferenceError.contextFull(needed: position + tokens.count, capacity: contextLength)
        }
        var start = 0
        while start < tokens.count {
            if isCancelled() { throw InferenceError.cancelled() }
            let n = min(Self.maxBatch, tokens.count - start)
            let isLastBatch = start + n == tokens.count
            let logitsFrom = allLogits ? 0 : (isLastBatch ? n - 1 : n)
            tokens.withUnsafeBufferPointer { buf in
                forward(UnsafeBufferPointer(rebasing: buf[start..<start + n]), logitsFrom: logitsFrom)
            }
            cachedTokens.append(contentsOf: tokens[start..<start + n])
            let vocab = config.vocabularySize
            for r in logitsFrom..<n {
                try body(start + r, UnsafeBufferPointer(start: logitsBuffer + (r - logitsFrom) * vocab, count: vocab))
            }
            start += n
        }
    }

    // MARK: Forward pass

    /// One batch of `tokens` at positions `position...`: the residual stream through every layer,
    /// then logits for the tokens from `logitsFrom` on into `logitsBuffer`.
    @_optimize(speed)
    private func forward(_ tokens: UnsafeBufferPointer<Int32>, logitsFrom: Int) {
        let n = tokens.count
        let p0 = position
        let dim = config.embeddingLength, hd = config.headDimension
        let qDim = config.queryDimension, kvDim = config.kvDimension, ffn = config.feedForwardLength
        let arch = architecture

        for (t, id) in tokens.enumerated() {
            model.tokenEmbedding.dequantizeRow(Int(id), into: x + t * dim)
        }
        if arch.scalesEmbedding {
            let scale = Float(dim).squareRoot()
            for i in 0..<(n * dim) { x[i] *= scale }
        }
        prepareRope(from: p0, count: n)

        for (l, layer) in model.layers.enumerated() {
            // Attention block: x += [norm](Wo · attention(rope(norm(Wq xn + bq)), rope(norm(Wk xn + bk)), Wv xn + bv)).
            for t in 0..<n { rmsNorm(x + t * dim, count: dim, weight: layer.attentionNorm, into: xn + t * dim) }
            let aq = convert(xn, rows: n, columns: dim, for: layer.wq)
            let ak = layer.wk.activationType == layer.wq.activationType ? aq : convert(xn, rows: n, columns: dim, for: layer.wk)
            let av = layer.wv.activationType == layer.wq.activationType ? aq : convert(xn, rows: n, columns: dim, for: layer.wv)
            multiply([(layer.wq, aq.pointer, aq.rowBytes, q, qDim),
                      (layer.wk, ak.pointer, ak.rowBytes, k, kvDim),
                      (layer.wv, av.pointer, av.rowBytes, v, kvDim)], tokens: n)
            addBias(layer.qBias, to: q, rows: n)
            addBias(layer.kBias, to: k, rows: n)
            addBias(layer.vBias, to: v, rows: n)
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
                for h in 0..<(n * config.headCount) { rmsNorm(q + h * hd, count: hd, weight: qNorm, into: q + h * hd) }
                for h in 0..<(n * config.kvHeadCount) { rmsNorm(k + h * hd, count: hd, weight: kNorm, into: k + h * hd) }
            }
            let rope = ropeTables[ropeTableOfLayer[l]]
            for t in 0..<n {
                applyRope(q + t * qDim, heads: config.headCount, token: t, table: rope)
                applyRope(k + t * kvDim, heads: config.kvHeadCount, token: t, table: rope)
            }
            var softmaxScale = config.attentionScale
            if arch.scalesQueryBeforeAttention {
                for i in 0..<(n * qDim) { q[i] *= softmaxScale }
                softmaxScale = 1
            }
            storeKV(layer: l, from: p0, count: n)
            attention(layer: l, from: p0, count: n, scale: softmaxScale)
            let ao = convert(attn, rows: n, columns: qDim, for: layer.wo)
            multiply([(layer.wo, ao.pointer, ao.rowBytes, tmp, dim)], tokens: n)
            if let post = layer.postAttentionNorm {
                for t in 0..<n { rmsNorm(tmp + t * dim, count: dim, weight: post, into: tmp + t * dim) }
            }
            for i in 0..<(n * dim) { x[i] += tmp[i] }

            // Feed-forward block: x += [norm](W_down · (act(W_gate xn) * (W_up xn))).
            for t in 0..<n { rmsNorm(x + t * dim, count: dim, weight: layer.ffnNorm, into: xn + t * dim) }
            let ag = convert(xn, rows: n, columns: dim, for: layer.wGate)
            let au = layer.wUp.activationType == layer.wGate.activationType ? ag : convert(xn, rows: n, columns: dim, for: layer.wUp)
            let ad: (pointer: UnsafeRawPointer, rowBytes: Int)
            if ffn % Self.swigluBlock(for: layer) == 0 {
                ad = gatedFeedForward(layer, ag, au, tokens: n)
            } else {
                multiply([(layer.wGate, ag.pointer, ag.rowBytes, gate, ffn),
                          (layer.wUp, au.pointer, au.rowBytes, up, ffn)], tokens: n)
                Self.gate(gate, up, count: n * ffn, activation: arch.activation)
                ad = convert(gate, rows: n, columns: ffn, for: layer.wDown)
            }
            multiply([(layer.wDown, ad.pointer, ad.rowBytes, tmp, dim)], tokens: n)
            if let post = layer.postFeedForwardNorm {
                for t in 0..<n { rmsNorm(tmp + t * dim, count: dim, weight: post, into: tmp + t * dim) }
            }
            for i in 0..<(n * dim) { x[i] += tmp[i] }
        }
        let rows = n - logitsFrom
        guard rows > 0 else { return }
        let vocab = config.vocabularySize
        if rows > logitsRows {
            logitsBuffer.deallocate()
            logitsBuffer = .allocate(capacity: rows * vocab)
            logitsRows = rows
        }
        for r in 0..<rows {
            rmsNorm(x + (logitsFrom + r) * dim, count: dim, weight: model.outputNorm, into: xn + r * dim)
        }
        let ax = convert(xn, rows: rows, columns: dim, for: model.output)
        multiply([(model.output, ax.pointer, ax.rowBytes, logitsBuffer, vocab)], tokens: rows)
        if let cap = config.finalLogitSoftcap {
            // ggml: scale by 1/cap, tanh, scale by cap
            let inverse = 1 / cap
            for i in 0..<(rows * vocab) { logitsBuffer[i] = tanhf(logitsBuffer[i] * inverse) * cap }
        }
    }

    /// `out = x / sqrt(mean(x²) + eps) * weight` over `count` elements (ggml_rms_norm then
    /// ggml_mul); `out` may be `x`.
    @_optimize(speed)
    private func rmsNorm(_ x: UnsafeMutablePointer<Float>, count n: Int, weight: [Float], into out: UnsafeMutablePointer<Float>) {
        var sum: Double = 0
        for i in 0..<n { sum += Double(x[i] * x[i]) }
        let scale = 1 / sqrtf(Float(sum / Double(n) + Double(config.rmsEpsilon)))
        weight.withUnsafeBufferPointer { w in
            for i in 0..<n { out[i] = (x[i] * scale) * w[i] }
        }
    }

    /// Adds `bias` (one row) to each of `rows` rows of `out` (rows of the bias's length).
    @_optimize(speed)
    private func addBias(_ bias: [Float]?, to out: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows {
                let row = out + r * b.count
                for i in 0..<b.count { row[i] += b[i] }
            }
        }
    }

    /// gate[i] = act(gate[i]) * up[i] for `count` elements, as ggml's swiglu / geglu ops.
    @_optimize(speed)
    static func gate(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafeMutablePointer<Float>, count: Int,
                     activation: Architecture.GatedActivation) {
        switch activation {
        case .silu:
            for i in 0..<count {
                let g = gate[i]
                gate[i] = g / (1 + expf(-g)) * up[i]
            }
        case .gelu:
            geluTable.withUnsafeBufferPointer { table in
                for i in 0..<count {
                    let g = gate[i]
                    let a: Float
                    if g <= -10 {
                        a = 0
                    } else if g >= 10 {
                        a = g
                    } else {
                        a = cq_f16_to_f32(table[Int(cq_f32_to_f16(g))])
                    }
                    gate[i] = a * up[i]
                }
            }
        }
    }

    /// ggml's GELU table (GGML_GELU_FP16): for every f16 bit pattern, the f16 of the tanh-form
    /// GELU of its value, computed in f32.
    static let geluTable: [UInt16] = (0...0xFFFF).map { bits in
        let x = cq_f16_to_f32(UInt16(bits))
        let y = 0.5 * x * (1 + tanhf(0.79788456080286535587989211986876 * x * (1 + 0.044715 * x * x)))
        return cq_f32_to_f16(y)
    }

    /// Converts `rows` activation rows to the type `matrix` is dotted with.
    @_optimize(speed)
    private func convert(_ input: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                         for matrix: WeightMatrix) -> (pointer: UnsafeRawPointer, rowBytes: Int) {
        let type = matrix.activationType
        let rowBytes = cq_row_size(type, Int64(columns))
        // rounded up to whole super-blocks, so every activation type has a row size for it
        let maxColumns = (max(config.embeddingLength, config.queryDimension, config.feedForwardLength) + Int(CQ_QK_K) - 1)
            / Int(CQ_QK_K) * Int(CQ_QK_K)
        let buffer: UnsafeMutableRawPointer
        if let existing = activationBuffers[type] {
            buffer = existing.pointer
        } else {
            let capacity = Self.maxBatch * cq_row_size(type, Int64(maxColumns))
            buffer = .allocate(byteCount: capacity, alignment: 64)
            activationBuffers[type] = (buffer, capacity)
        }
        for r in 0..<rows {
            _ = cq_quantize_row(type, input + r * columns, buffer + r * rowBytes, Int64(columns))
        }
        return (UnsafeRawPointer(buffer), rowBytes)
    }

    /// Runs several matrix products as one parallel step: the rows of all of them are split
    /// evenly across the threads, each split point moved to a whole group of the repacked matrix it
    /// falls in.
    @_optimize(speed)
    private func multiply(_ jobs: [(WeightMatrix, UnsafeRawPointer, Int, UnsafeMutablePointer<Float>, Int)], tokens: Int) {
        let total = jobs.reduce(0) { $0 + $1.0.rows }
        let parts = pool.activeCount
        pool.run { index in
            let lo = Self.splitPoint(jobs, total: total, parts: parts, index: index)
            let hi = Self.splitPoint(jobs, total: total, parts: parts, index: index + 1)
            Self.multiplyShare(jobs, tokens: tokens, rows: lo..<hi)
        }
    }

    /// Where thread `index`'s share of the concatenated rows starts (`index == parts`: the end):
    /// the even split, rounded to the nearest multiple of the row granule of the matrix it is in.
    /// Monotone in `index`, so the shares stay disjoint and cover every row.
    static func splitPoint(_ jobs: [(WeightMatrix, UnsafeRawPointer, Int, UnsafeMutablePointer<Float>, Int)],
                           total: Int, parts: Int, index: Int) -> Int {
        guard index < parts else { return total }
        let even = ThreadPool.chunk(total, parts: parts, index: index).lowerBound
        var offset = 0
        for (matrix, _, _, _, _) in jobs {
            if even < offset + matrix.rows {
                let g = matrix.rowGranule
                return offset + min(matrix.rows, (even - offset + g / 2) / g * g)
            }
            offset += matrix.rows
        }
        return total
    }

    /// One thread's share of `multiply`: the rows `mine` of the concatenated matrices.
    @_optimize(speed)
    private static func multiplyShare(_ jobs: [(WeightMatrix, UnsafeRawPointer, Int, UnsafeMutablePointer<Float>, Int)],
                                      tokens: Int, rows mine: Range<Int>) {
        var offset = 0
        for (matrix, act, rowBytes, out, outStride) in jobs {
            let lo = max(mine.lowerBound - offset, 0), hi = min(mine.upperBound - offset, matrix.rows)
            if lo < hi {
                matrix.multiply(rows: lo..<hi, activations: act, xStride: rowBytes, tokens: tokens,
                                out: out, outStride: outStride)
            }
            offset += matrix.rows
        }
    }

    /// Rows of gate/up each thread of gatedFeedForward takes as a unit: whole blocks of W_down's
    /// activation type (32, or 256 for Q8_K) and whole groups of repacked rows (8).
    static func swigluBlock(for layer: LanguageModel.Layer) -> Int {
        max(Int(CQ_QK), Int(cq_block_size(layer.wDown.activationType)))
    }

    /// gate = act(W_gate x) * (W_up x), converted for W_down, in one parallel step: each thread
    /// takes the same whole blocks of rows of both matrices, applies the activation to them and
    /// converts them, so no thread waits for another and the main thread does no serial pass.
    /// The same operations per element as a serial pass, so the same results.
    @_optimize(speed)
    private func gatedFeedForward(_ layer: LanguageModel.Layer, _ ag: (pointer: UnsafeRawPointer, rowBytes: Int),
                                  _ au: (pointer: UnsafeRawPointer, rowBytes: Int), tokens n: Int)
        -> (pointer: UnsafeRawPointer, rowBytes: Int) {
        let ffn = config.feedForwardLength
        let type = layer.wDown.activationType
        let rowBytes = cq_row_size(type, Int64(ffn))
        if downActivations == nil {
            downActivations = .allocate(byteCount: Self.maxBatch * rowBytes, alignment: 64)
        }
        let out = downActivations!
        let block = Self.swigluBlock(for: layer)
        let blockBytes = cq_row_size(type, Int64(block))
        let blocks = ffn / block
        let parts = pool.activeCount
        let gate = self.gate, up = self.up
        let activation = architecture.activation
        pool.run { index in
            let mine = ThreadPool.chunk(blocks, parts: parts, index: index)
            let rows = (mine.lowerBound * block)..<(mine.upperBound * block)
            guard !rows.isEmpty else { return }
            layer.wGate.multiply(rows: rows, activations: ag.pointer, xStride: ag.rowBytes, tokens: n, out: gate, outStride: ffn)
            layer.wUp.multiply(rows: rows, activations: au.pointer, xStride: au.rowBytes, tokens: n, out: up, outStride: ffn)
            for t in 0..<n {
                let g = gate + t * ffn + rows.lowerBound, u = up + t * ffn + rows.lowerBound
                Self.gate(g, u, count: rows.count, activation: activation)
                _ = cq_quantize_row(type, g, out + t * rowBytes + mine.lowerBound * blockBytes, Int64(rows.count))
            }
        }
        return (UnsafeRawPointer(out), rowBytes)
    }

    /// cos/sin of every rotated pair for the batch's positions, one table per RoPE base and scale
    /// of the layers (ggml_rope_cache_init; the same for normal and NeoX mode).
    @_optimize(speed)
    private func prepareRope(from p0: Int, count n: Int) {
        let pairs = config.ropeDimensionCount / 2
        for (table, rope) in zip(ropeTables, ropeParameters) {
            let thetaScale = powf(rope.base, -2 / Float(config.ropeDimensionCount))
            for t in 0..<n {
                var theta = Float(p0 + t)
                for i in 0..<pairs {
                    let factor = model.ropeFrequencyFactors?[i] ?? 1
                    let angle = rope.scale * (theta / factor)
                    table.cos[t * pairs + i] = cosf(angle)
                    table.sin[t * pairs + i] = sinf(angle)
                    theta *= thetaScale
                }
            }
        }
    }

    /// Rotates the first `ropeDimensionCount` dims of each head by pairs: adjacent ones (x[2i],
    /// x[2i+1]) in normal mode, halves (x[i], x[i + n_rot/2]) in NeoX mode.
    @_optimize(speed)
    private func applyRope(_ vec: UnsafeMutablePointer<Float>, heads: Int, token t: Int,
                           table: (cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>)) {
        let pairs = config.ropeDimensionCount / 2, hd = config.headDimension
        let c = table.cos + t * pairs, s = table.sin + t * pairs
        let (stride, distance) = architecture.ropeStyle == .normal ? (2, 1) : (1, pairs)
        for h in 0..<heads {
            let base = vec + h * hd
            for i in 0..<pairs {
                let j = i * stride
                let x0 = base[j], x1 = base[j + distance]
                base[j] = x0 * c[i] - x1 * s[i]
                base[j + distance] = x0 * s[i] + x1 * c[i]
            }
        }
    }

    /// Appends the batch's keys and values to layer l's cache. A sliding-window layer whose
    /// capacity the batch would overrun first moves its cache so that it starts at the oldest
    /// position the batch's first token still attends to.
    @_optimize(speed)
    private func storeKV(layer l: Int, from p0: Int, count n: Int) {
        let kvDim = config.kvDimension, capacity = kvCapacity[l]
        let layerKeys = keys + kvOffset[l]
        let layerValues = values + kvOffset[l]
        if p0 + n - kvBase[l] > capacity, let window = config.slidingWindow {
            let newBase = max(0, p0 - (window - 1))
            let shift = newBase - kvBase[l], kept = p0 - newBase
            precondition(shift > 0 && kept + n <= capacity, "sliding-window cache of layer \(l) too small")
            layerKeys.update(from: layerKeys + shift * kvDim, count: kept * kvDim)
            for d in 0..<kvDim {
                let row = layerValues + d * capacity
                row.update(from: row + shift, count: kept)
            }
            kvBase[l] = newBase
        }
        let slot = p0 - kvBase[l]
        for t in 0..<n {
            cq_f32_to_f16_row(k + t * kvDim, layerKeys + (slot + t) * kvDim, Int64(kvDim))
            for d in 0..<kvDim {
                layerValues[d * capacity + slot + t] = cq_f32_to_f16(v[t * kvDim + d])
            }
        }
    }

    /// Causal grouped-query attention for the batch, parallel over (token, head) pairs. As ggml
    /// without flash attention: the query is rounded to f16 for K·q, softmax(scale·K·q) in f32,
    /// and the probabilities rounded to f16 for the product with V. Each thread takes a contiguous
    /// range of the pairs and evaluates the query heads of a token that share a KV head in one
    /// cq_attend_f16_group call (which reads that head's keys and values once for all of them):
    /// the whole group where its range holds it, the part it holds where a range boundary cuts a
    /// group (decode on two threads: 9 heads, 3 groups). A head's output is the same bits either
    /// way, so the logits do not depend on the thread count.
    @_optimize(speed)
    private func attention(layer l: Int, from p0: Int, count n: Int, scale: Float) {
        let items = n * config.headCount
        let parts = pool.activeCount
        pool.run { index in
            self.attentionShare(layer: l, from: p0, items: ThreadPool.chunk(items, parts: parts, index: index),
                                scale: scale, scratch: self.attentionScratch + index * self.attentionScratchStride)
        }
    }

    @_optimize(speed)
    private func attentionShare(layer l: Int, from p0: Int, items: Range<Int>, scale: Float,
                                scratch: UnsafeMutablePointer<Float>) {
        let hd = config.headDimension, qDim = config.queryDimension, kvDim = config.kvDimension
        let capacity = kvCapacity[l], base = kvBase[l]
        let window = config.isSlidingWindowLayer(l) ? config.slidingWindow : nil
        let heads = config.headCount
        let group = heads / config.kvHeadCount
        let layerKeys = keys + kvOffset[l]
        let layerValues = values + kvOffset[l]
        var item = items.lowerBound
        while item < items.upperBound {
            let t = item / heads, h = item % heads
            let kvh = h / group
            // This token's heads from h to the end of h's group, as far as this share goes.
            let count = min((kvh + 1) * group - h, items.upperBound - item)
            // The positions it attends to: all before it, or the window ending at it.
            let p = p0 + t
            let first = window.map { max(0, p - ($0 - 1)) } ?? 0
            let slot = first - base
            cq_attend_f16_group(Int64(count), Int64(hd), Int64(p - first + 1), q + t * qDim + h * hd,
                                layerKeys + slot * kvDim + kvh * hd, kvDim,
                                layerValues + kvh * hd * capacity + slot, capacity, scale, scratch,
                                attn + t * qDim + h * hd)
            item += count
        }
    }
}

extension Float {
    /// The value of IEEE binary16 bits.
    init(f16Bits bits: UInt16) { self = cq_f16_to_f32(bits) }
}
