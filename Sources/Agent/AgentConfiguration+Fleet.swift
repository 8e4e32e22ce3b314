import AnswerCache
import FleetConfig
import FoundationEssentials
import OutpostCore

extension AgentConfiguration {
    /// This configuration with fleet settings laid over it (`model.path`, `generation.*`, `cache.*`,
    /// `mqtt.topic_root` when the agent is in a fleet). `invalidate` is acted on once, when the
    /// config carrying it is applied (`FleetConfigService`), and changes nothing here.
    func applying(_ settings: FleetSettings) throws(FleetConfigError) -> AgentConfiguration {
        var c = self
        // Every setting of the table a fleet config may carry, through the one mapping.
        for setting in Settings.all where setting.sources.contains(.fleet) {
            guard let section = setting.section, let value = settings[section, setting.field] else { continue }
            c.set(setting, value)
        }
        c.members = settings.members
        do { try c.cacheSettings.validate() } catch { throw .invalidPayload("cache: \(error.message)") }
        do { try c.defaults.validate() } catch { throw .invalidPayload("generation: \(error.message)") }
        guard c.defaults.maxTokens <= c.maxTokensLimit else {
            throw .invalidPayload("generation.max_tokens \(c.defaults.maxTokens) is above max_tokens_limit \(c.maxTokensLimit)")
        }
        return c
    }
}

extension AgentConfiguration {
    /// The answer cache's limits that a fleet config may change while it runs (`AnswerCache.reconfigure`).
    var cacheSettings: AnswerCache.Settings {
        AnswerCache.Settings(memoryBudgetBytes: cache.memoryBudgetBytes, diskBudgetBytes: cache.diskBudgetBytes,
                             flushIntervalMillis: UInt64(max(0, cache.flushIntervalMillis)), batchSize: cache.batchSize,
                             queueCapacity: cache.queueCapacity)
    }
}
