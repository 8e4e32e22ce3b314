import CQuants

/// The compute-kernel path this machine uses (chosen by CQuants at first use from the CPU's
/// features, or forced with OUTPOST_KERNEL).
enum KernelInfo {
    static var name: String { String(cString: cq_kernel_name()) }

    /// Why OUTPOST_KERNEL was refused, if it was.
    static var initError: String? { cq_kernel_init_error().map { String(cString: $0) } }
}
