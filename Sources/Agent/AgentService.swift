import AnswerCache
import CQuants
import FleetConfig
import Dispatch
import FoundationEssentials
import Inference
import Logging
import OutpostCore
import PeerSync
import Synchronization

/// The agent's `AnswerService`: every door's queries go through the answer cache to the model.
final class AgentService: QueryAnswering, AdminService, @unchecked Sendable {
    // @unchecked: every stored property is immutable or itself thread-safe.
    /// The configuration and model in use; a fleet config switches both at once (`switchLive`).
    /// A request takes one snapshot at its start and runs on it to the end.
    private let live: Mutex<(configuration: AgentConfiguration, runtime: ModelRuntime)>
    let cache: AnswerCache
    let scheduler: GenerationScheduler
    let metrics: AgentMetrics
    /// The fleet config applied at start; `/health` reports its version.
    let fleetConfig: ConfigApplier
    let logger: Logger
    let started = Date()
    let kernel: String
    private let readyFlag = GenerationScheduler.CancelFlag()
    /// The MQTT link (outbox and PeerSync), empty without `--mqtt`.
    let link: FleetLink

    init(configuration: AgentConfiguration, runtime: ModelRuntime, cache: AnswerCache, link: FleetLink,
         metrics: AgentMetrics, fleetConfig: ConfigApplier, logger: Logger) {
        self.live = Mutex((configuration, runtime))
        self.link = link
        self.cache = cache
        self.scheduler = GenerationScheduler(maxQueued: configuration.maxQueuedRequests)
        self.metrics = metrics
        self.fleetConfig = fleetConfig
        self.logger = logger
        self.kernel = String(cString: cq_kernel_name())
    }

    var configuration: AgentConfiguration { live.withLock { $0.configuration } }
    var runtime: ModelRuntime { live.withLock { $0.runtime } }
    var modelName: String { runtime.name }
    var samplingDefaults: SamplingParameters? { configuration.defaults }

    /// Switches the live configuration, and the model when `runtime` is given (requests already
    /// running finish on the old one, which is freed after them).
    func switchLive(_ configuration: AgentConfiguration, runtime: ModelRuntime?) {
        live.withLock { $0 = (configuration, runtime ?? $0.runtime) }
    }

    func markReady() { readyFlag.set() }
    var isReady: Bool { readyFlag.isSet }

    /// The prompt's tokens, checked against the context. Only a generation needs them: a cache
    /// hit is answered without tokenizing.
    private func prompt(_ query: Query, _ runtime: ModelRuntime) throws -> [Int32] {
        let ids = try runtime.promptTokens(query)
        let maxTokens = query.sampling.maxTokens
        guard ids.count + maxTokens <= runtime.contextLength else {
            throw ServiceError.tooLong("the prompt (\(ids.count) tokens) plus max_tokens (\(maxTokens)) "
                + "exceed the context of \(runtime.contextLength) tokens")
        }
        return ids
    }

    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery {
        let start = DispatchTime.now()
        let (configuration, runtime) = live.withLock { $0 }
        let sampling = query.sampling
        guard sampling.maxTokens <= configuration.maxTokensLimit else {
            throw ServiceError.tooLong("max_tokens \(sampling.maxTokens) is above this agent's limit of \(configuration.maxTokensLimit)")
        }
        var timings = Timings()
        func finish(_ answer: Answer, cached: Bool, stale: Bool, key: CacheKey?) -> AnsweredQuery {
            timings.totalMs = Self.millis(since: start)
            metrics.request(cached: cached, seconds: timings.totalMs / 1000, completionTokens: cached ? 0 : answer.completionTokens)
            return AnsweredQuery(answer: answer, cached: cached, stale: stale, cacheKey: key, gateway: configuration.gatewayID,
                                 kernel: kernel, timings: timings)
        }

        guard query.isCacheable else {
            let answer = try await generate(runtime, try prompt(query, runtime), sampling, onPiece: onPiece, timings: &timings)
            return finish(answer, cached: false, stale: false, key: nil)
        }
        let key = CacheKey.derive(modelFingerprint: runtime.fingerprint, chatTemplate: runtime.templateSource, query: query)
        let ttl = UInt64(configuration.cache.ttlSeconds) * 1000
        let swr = UInt64(configuration.cache.staleWhileRevalidateSeconds) * 1000

        if query.cacheMode == .refresh {
            let startedAt = cache.clock.tick()
            let answer = try await generate(runtime, try prompt(query, runtime), sampling, onPiece: onPiece, timings: &timings)
            cache.fill(key, answer: answer, namespace: query.namespace, tags: query.tags, ttlMillis: ttl,
                       staleWhileRevalidateMillis: swr, startedAt: startedAt)
            return finish(answer, cached: false, stale: false, key: key)
        }

        switch cache.lookup(key) {
        case .fresh(let answer):
            await onPiece(answer.text)
            return finish(answer, cached: true, stale: false, key: key)
        case .stale(let answer):
            cache.refresh(for: key, namespace: query.namespace, tags: query.tags) { [self] in
                var t = Timings()
                return try await generate(runtime, try prompt(query, runtime), sampling, onPiece: { _ in }, timings: &t)
            }
            await onPiece(answer.text)
            return finish(answer, cached: true, stale: true, key: key)
        case .miss:
            let (answer, generated) = try await generateShared(key, query, runtime, sampling, onPiece: onPiece)
            if let generated { timings = generated }
            return finish(answer, cached: false, stale: false, key: key)
        }
    }

    /// A missed key's answer, generated once for every request that asks for it meanwhile
    /// (`AnswerCache.sharedCompute`). Returns the generation's timings when this request led it;
    /// a follower gets the whole text as one piece.
    private func generateShared(_ key: CacheKey, _ query: Query, _ runtime: ModelRuntime, _ sampling: SamplingParameters,
                                onPiece: @escaping @Sendable (String) async -> Void) async throws -> (Answer, Timings?) {
        // A request waiting on another's generation of the same key (a follower) whose leader
        // was cancelled (its client left) computes the answer itself: it still wants it. A
        // few times at most, in case leaders keep leaving.
        var attempt = 0
        while true {
            attempt += 1
            let leader = TimingsBox()
            // The generation runs in the cache's shared task, which cancelling this request
            // does not reach: the leader's cancellation comes through this flag instead, so a
            // client that leaves frees the model within one token and nothing partial is cached.
            let abandoned = GenerationScheduler.CancelFlag()
            let answer: Answer
            do {
                answer = try await withTaskCancellationHandler {
                    try await cache.sharedCompute(for: key, namespace: query.namespace, tags: query.tags) { [self] in
                        var t = Timings()
                        let a = try await generate(runtime, try prompt(query, runtime), sampling, cancelledBy: abandoned,
                                                   onPiece: onPiece, timings: &t)
                        leader.set(t)
                        return a
                    }
                } onCancel: {
                    abandoned.set()
                }
            } catch {
                if error is CancellationError, !Task.isCancelled, attempt < 3 { continue }
                throw error
            }
            if let t = leader.value { return (answer, t) }
            // Another request computed it while we waited: hand over the whole text.
            await onPiece(answer.text)
            return (answer, nil)
        }
    }

    /// Runs the model for `promptIds`, streaming text to `onPiece`. Stops at the next token when
    /// the calling task is cancelled or `flag` is set, throwing `CancellationError`.
    private func generate(_ runtime: ModelRuntime, _ promptIds: [Int32], _ sampling: SamplingParameters,
                          cancelledBy flag: GenerationScheduler.CancelFlag = .init(),
                          onPiece: @escaping @Sendable (String) async -> Void, timings: inout Timings) async throws -> Answer {
        let submitted = DispatchTime.now()
        let (pieces, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .unbounded)
        let scheduler = self.scheduler
        @Sendable func job() async throws -> (GenerationResult, Double) {
            do {
                return try await scheduler.run(cancelledBy: flag) { flag in
                    defer { continuation.finish() }
                    let begun = DispatchTime.now()
                    let r = try runtime.generate(promptIds, sampling: sampling, isCancelled: { flag.isSet }) { piece in
                        continuation.yield(piece)
                    }
                    return (r, Double(begun.uptimeNanoseconds - submitted.uptimeNanoseconds) / 1e6)
                }
            } catch {
                continuation.finish()  // refused or cancelled before it ran: nothing more will come
                throw error
            }
        }
        async let result = job()
        for await piece in pieces { await onPiece(piece) }
        let r: GenerationResult
        let queueMs: Double
        do {
            (r, queueMs) = try await result
        } catch let e as InferenceError where e.isCancellation {
            // One error for every way a generation is cancelled (its client left, shutdown).
            throw CancellationError()
        }
        timings.queueMs = queueMs
        timings.promptMs = r.promptTokensPerSecond > 0 ? Double(r.promptIds.count) / r.promptTokensPerSecond * 1000 : 0
        timings.generateMs = r.tokensPerSecond > 0 ? Double(r.ids.count) / r.tokensPerSecond * 1000 : 0
        let finish: Answer.FinishReason = r.finishReason == .length || r.finishReason == .contextFull ? .length : .stop
        return Answer(text: r.text, finishReason: finish, promptTokens: r.promptIds.count, completionTokens: r.ids.count)
    }

    static func millis(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
    }

    func health() async -> HealthReport {
        let (configuration, runtime) = live.withLock { $0 }
        return HealthReport(ready: isReady, modelLoaded: true, modelFingerprint: runtime.fingerprint, kernel: kernel,
                     configVersion: Int(await fleetConfig.configVersion), broker: link.brokerState,
                     gateway: configuration.gatewayID,
                     uptimeSeconds: Date().timeIntervalSince(started))
    }

    func cacheStatistics() async -> [String: Int] {
        // The counters, and the limits in force (a fleet config changes them live).
        cache.stats().counters.merging(cache.settings.counters) { counter, _ in counter }
    }

    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt {
        let cache = self.cache
        let outbox = link.outbox
        // The durable write blocks on fsync: keep it off the cooperative threads. The tombstone
        // and its outbox record are committed in one transaction before the caller hears back.
        let tombstone = try await withCheckedThrowingContinuation { (c: CheckedContinuation<Tombstone, Error>) in
            DispatchQueue.global().async {
                c.resume(with: Result { try cache.invalidate(scope, recordingIn: outbox) })
            }
        }
        // Publish now if connected (else the outbox is published after the reconnect).
        link.publishPending()
        logger.info("cache invalidated", metadata: ["scope": "\(scope)", "hlc": "\(tombstone.hlc)"])
        return InvalidationReceipt(tombstone)
    }

    /// Publishes a fleet config outcome as the MQTT status's `config` object (when in a fleet).
    func reportConfig(_ status: ConfigStatus, restartRequired: [String]) async {
        var json = status.json
        if case .object(var o) = json {
            o["restart_required"] = .array(restartRequired.map(JSONValue.string))
            json = .object(o)
        }
        await link.reportConfig(json)
    }

    func metricsText() async -> String {
        metrics.update(cache: cache.stats(), queueDepth: scheduler.depth)
        if let peer = link.peer {
            metrics.update(peer: peer.statistics(), connected: peer.brokerState == "connected")
        }
        return metrics.render()
    }
}

/// The leader's timings, set from inside the shared computation.
final class TimingsBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = Lock()
    private var stored: Timings?
    func set(_ t: Timings) { lock.withLock { stored = t } }
    var value: Timings? { lock.withLock { stored } }
}
