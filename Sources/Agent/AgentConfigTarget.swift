import FleetConfig
import Dispatch
import FoundationEssentials
import OutpostCore
import PeerSync

/// Applies fleet configs at start-up, before the agent serves: `switchTo` lays the settings over
/// the agent's own configuration; `healthCheck` loads the model they name and has it answer a test
/// prompt within a deadline. The runtime loaded by a passing check is kept for the agent
/// (`takeRuntime`). Once the agent runs, `LiveConfigTarget` takes over.
final class AgentConfigTarget: ConfigTarget, @unchecked Sendable {
    // @unchecked: the mutable state is guarded by `lock`.
    let base: AgentConfiguration
    let deadline: Duration
    private let lock = Lock()
    private var current: AgentConfiguration
    private var checked: (path: String, runtime: ModelRuntime)?

    /// Whose invalidations are accepted; its member list follows the live config (nil: open fleet).
    let membership: Membership?

    init(base: AgentConfiguration, membership: Membership? = nil, deadline: Duration = .seconds(60)) {
        self.base = base
        self.membership = membership
        self.deadline = deadline
        current = base
    }

    /// The configuration last switched to (the agent's own when no fleet config is live).
    var configuration: AgentConfiguration { lock.withLock { current } }

    /// The runtime a passing health check loaded for the live model, if any.
    func takeRuntime() -> ModelRuntime? {
        lock.withLock {
            defer { checked = nil }
            return checked?.path == current.modelPath ? checked?.runtime : nil
        }
    }

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        let next = try Self.validated(base, settings)
        // Members change at once, before the model check: a rollback switches them back.
        membership?.setMembers(next.members)
        lock.withLock { current = next }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {
        let c = configuration
        let runtime = try await Self.loadAndTest(c, deadline: deadline)
        lock.withLock { checked = (c.modelPath, runtime) }
    }

    /// `base` with `settings` laid over it, its topic root checked.
    static func validated(_ base: AgentConfiguration, _ settings: FleetSettings) throws(FleetConfigError) -> AgentConfiguration {
        let next = try base.applying(settings)
        if let m = next.mqtt, let root = m.topicRoot {
            do { _ = try FleetTopics(fleet: m.fleet, gateway: next.gatewayID, root: root) } catch {
                throw .invalidPayload("mqtt.topic_root: \(error)")
            }
        }
        return next
    }

    /// Loads `c.modelPath` off the cooperative threads and has it answer a test prompt within the
    /// deadline.
    static func loadAndTest(_ c: AgentConfiguration, deadline limit: Duration) async throws(FleetConfigError) -> ModelRuntime {
        let deadline = ContinuousClock.now + limit
        let result: Result<ModelRuntime, FleetConfigError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let runtime: ModelRuntime
                do { runtime = try ModelRuntime(path: c.modelPath, threads: c.threads, contextLength: c.contextLength) } catch {
                    continuation.resume(returning: .failure(.healthCheck("cannot load the model \(c.modelPath): \(error)")))
                    return
                }
                do {
                    let query = try Query(messages: [ChatMessage(role: "user", content: "Reply with OK.")],
                                          sampling: SamplingParameters(temperature: 0, maxTokens: 4))
                    let r = try runtime.generate(runtime.promptTokens(query), sampling: query.sampling,
                                                 isCancelled: { ContinuousClock.now > deadline }, onText: { _ in })
                    guard ContinuousClock.now <= deadline else {
                        continuation.resume(returning: .failure(.healthCheck("the test prompt took longer than \(limit)")))
                        return
                    }
                    guard !r.ids.isEmpty else {
                        continuation.resume(returning: .failure(.healthCheck("the model produced no tokens for the test prompt")))
                        return
                    }
                    continuation.resume(returning: .success(runtime))
                } catch {
                    continuation.resume(returning: .failure(.healthCheck("the test prompt failed: \(error)")))
                }
            }
        }
        return try result.get()
    }
}

/// Applies fleet configs to the running agent: `switchTo` switches every setting but the model
/// (the old model keeps answering); `healthCheck` then loads a changed model and has it answer the
/// test prompt, and only if it passes switches the service to it. A model that fails is never
/// switched to, so the rollback that follows leaves the old one in place.
///
/// All live: `generation.*` (defaults and `max_tokens_limit`), `cache.ttl_s` and
/// `cache.stale_while_revalidate_s` (read per fill), `cache.memory_budget_mb`, `disk_budget_mb`,
/// `flush_interval_ms`, `batch_size`, `queue_capacity` (`AnswerCache.reconfigure`), `model.path`
/// (at the health check), `members` (the keys peers' invalidations are checked against).
/// `mqtt.topic_root` moves the MQTT link (`TopicRootRequests`) once the config is switched to.
/// `restartRequired` lists settings that would only take effect at the next start: none at present.
final class LiveConfigTarget: ConfigTarget, Sendable {
    let base: AgentConfiguration
    let service: AgentService
    let membership: Membership?
    /// Where topic-root moves go (nil without MQTT).
    let roots: TopicRootRequests?
    let deadline: Duration

    init(base: AgentConfiguration, service: AgentService, membership: Membership?, roots: TopicRootRequests?,
         deadline: Duration = .seconds(60)) {
        self.base = base
        self.service = service
        self.membership = membership
        self.roots = roots
        self.deadline = deadline
    }

    var restartRequired: [String] { [] }

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        let next = try AgentConfigTarget.validated(base, settings)
        membership?.setMembers(next.members)
        // The model stays until the health check has loaded and tested the new one.
        var staged = next
        staged.modelPath = service.configuration.modelPath
        do { try service.cache.reconfigure(next.cacheSettings) } catch { throw .invalidPayload("cache: \(error.message)") }
        service.switchLive(staged, runtime: nil)
        if let roots, let m = next.mqtt { roots.request(m.topicRoot ?? "outpost/\(m.fleet)") }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {
        let c = try AgentConfigTarget.validated(base, settings)
        if service.configuration.modelPath != c.modelPath {
            let runtime = try await AgentConfigTarget.loadAndTest(c, deadline: deadline)
            service.switchLive(c, runtime: runtime)
        }
        let running = service.configuration.modelPath
        guard running == c.modelPath else {
            throw .healthCheck("the agent runs \(running), not \(c.modelPath)")
        }
    }
}

/// Topic-root moves asked by fleet configs, for `PeerSyncService` (the newest request wins).
final class TopicRootRequests: Sendable {
    let roots: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (roots, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func request(_ root: String) { continuation.yield(root) }
}
