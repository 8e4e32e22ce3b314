import FleetConfig
import FoundationEssentials
import Logging
import OutpostCore
import PeerSync
import ServiceLifecycle

/// Applies fleet configs that arrive over MQTT to the running agent, one at a time, through the
/// same `ConfigApplier` as the file given at start, and reports each step (`validating`,
/// `persisted`, `switching`, `health_check`) and then the outcome on the retained status topic
/// (`config`), and the outcome in the log.
///
/// PeerSync hands messages over with `receive` (it never waits here); they queue in a small
/// buffer that keeps the newest, so a flood of configs cannot grow memory or stall the MQTT loop.
///
/// A retained config delivered again (on every reconnect the broker resends what is retained)
/// whose version is already applied from its source is nothing new: it is counted and ignored,
/// and the status keeps the outcome it describes. The same version arriving as a new publication
/// is a replay and is reported as rejected. An empty message (the retained config cleared) is
/// ignored too.
final class FleetConfigService: Service, Sendable {
    let applier: ConfigApplier
    let target: LiveConfigTarget
    let service: AgentService
    let logger: Logger
    private let deliveries: AsyncStream<ConfigDelivery>
    private let continuation: AsyncStream<ConfigDelivery>.Continuation
    /// Configs waiting beyond the one being applied; older ones are dropped first.
    static let bufferSize = 16

    init(applier: ConfigApplier, target: LiveConfigTarget, service: AgentService, logger: Logger) {
        self.applier = applier
        self.target = target
        self.service = service
        self.logger = logger
        (deliveries, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferSize))
    }

    /// Called by PeerSync for each message on a config topic; returns at once.
    func receive(_ delivery: ConfigDelivery) {
        if case .dropped = continuation.yield(delivery) { service.metrics.configs(outcome: "dropped") }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            for await delivery in deliveries {
                await handle(delivery)
            }
        }
    }

    func handle(_ delivery: ConfigDelivery) async {
        let now = Int64(Date().timeIntervalSince1970)
        let data = Data(delivery.payload)
        if delivery.byteCount == 0 {
            service.metrics.configs(outcome: "empty")
            logger.info("fleet config topic cleared", metadata: ["topic": "\(delivery.topic)"])
            return
        }
        if delivery.retained, await applier.isApplied(data) {
            service.metrics.configs(outcome: "redelivered")
            logger.debug("retained fleet config already applied", metadata: ["topic": "\(delivery.topic)"])
            return
        }
        let source: ConfigSource = delivery.source == .fleet ? .fleet : .gateway
        let status: ConfigStatus
        if delivery.isOversized {
            // PeerSync's bound is the verifier's (`Agent.run`): the bytes were not even kept.
            status = ConfigStatus(version: 0, state: .rejected, failure: .oversized(delivery.byteCount, limit: applier.verifier.maxEnvelopeBytes),
                                  source: source, at: now)
        } else {
            // Every step on the retained status as the applier reaches it; the outcome last.
            status = await applier.apply(data, from: source, now: now, to: target) { [service, logger] step in
                logger.debug("fleet config step", metadata: ["version": "\(step.version)", "state": "\(step.state.rawValue)"])
                await service.reportConfig(step, restartRequired: [])
            }
        }
        if status.state == .applied {
            await invalidate(for: status)
        }
        await report(status)
    }

    /// Drops what the applied config's `invalidate` names, through the same durable path as the
    /// API (tombstone, outbox, published to peers). Once: only when that config is applied.
    private func invalidate(for status: ConfigStatus) async {
        let live = await applier.live
        let settings = status.source == .gateway ? live.gateway : live.fleet
        await Self.invalidate(settings, service: service, logger: logger)
    }

    static func invalidate(_ settings: FleetSettings, service: AgentService, logger: Logger) async {
        let (tags, namespaces) = settings.invalidation
        for scope in tags.map(InvalidationScope.tag) + namespaces.map(InvalidationScope.namespace) {
            do { _ = try await service.invalidate(scope) } catch {
                logger.error("fleet config invalidation failed", metadata: ["scope": "\(scope)", "error": "\(error)"])
            }
        }
    }

    /// Logs `status`, and publishes it as the status topic's `config` object.
    func report(_ status: ConfigStatus) async {
        Self.log(status, restartRequired: status.state == .applied ? target.restartRequired : [], logger: logger)
        service.metrics.configs(outcome: status.state.rawValue)
        await service.reportConfig(status, restartRequired: target.restartRequired)
    }

    static func log(_ status: ConfigStatus, restartRequired: [String] = [], logger: Logger) {
        var metadata: Logger.Metadata = ["version": "\(status.version)", "state": "\(status.state.rawValue)"]
        if let source = status.source { metadata["source"] = "\(source.rawValue)" }
        if let error = status.error { metadata["error"] = "\(error)" }
        if let reason = status.reason { metadata["reason"] = "\(reason)" }
        if !restartRequired.isEmpty { metadata["restart_required"] = "\(restartRequired.joined(separator: ","))" }
        if status.state == .applied {
            logger.info("fleet config applied", metadata: metadata)
        } else {
            logger.warning("fleet config not applied", metadata: metadata)
        }
    }
}
