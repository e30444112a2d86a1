import NetMPWire

/// What the fault injector does to frames, per direction: off unless asked for (smoltcp's
/// FaultInjector is the model). This kernel has no netem, so reordering, delay and
/// corruption for tests come from here; loss and duplication can come from nftables too.
public struct FaultPlan: Equatable, Sendable {
    public var drop = 0.0
    public var duplicate = 0.0
    /// Chance that a frame is held back by `reorderDelay` so later frames overtake it.
    public var reorder = 0.0
    public var reorderDelay = Interval.milliseconds(10)
    /// Added to every frame: half the extra round-trip time when both directions carry it.
    public var delay = Interval(nanoseconds: 0)
    /// Chance that one byte of the frame (past the Ethernet header) is flipped.
    public var corrupt = 0.0
    public var seed: UInt64 = 1
    public var inbound = true
    public var outbound = true

    public init() {}

    public var isActive: Bool { drop > 0 || duplicate > 0 || reorder > 0 || delay.nanoseconds > 0 || corrupt > 0 }

    /// Parses "drop=0.01,dup=0.01,reorder=0.05,reorder-delay=10ms,delay=25ms,corrupt=0.001,seed=7,dir=in|out|both".
    public static func parse(_ text: String) -> Result<FaultPlan, FaultPlanError> {
        var plan = FaultPlan()
        for item in text.split(separator: ",") where !item.isEmpty {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { return .failure(FaultPlanError(item: String(item))) }
            let (key, value) = (kv[0], kv[1])
            func probability() -> Double? { Double(value).flatMap { (0...1).contains($0) ? $0 : nil } }
            func interval() -> Interval? {
                if value.hasSuffix("ms"), let n = UInt64(value.dropLast(2)) { return .milliseconds(n) }
                if value.hasSuffix("us"), let n = UInt64(value.dropLast(2)) { return Interval(nanoseconds: n * 1000) }
                return nil
            }
            switch key {
            case "drop": guard let p = probability() else { return .failure(FaultPlanError(item: String(item))) }; plan.drop = p
            case "dup": guard let p = probability() else { return .failure(FaultPlanError(item: String(item))) }; plan.duplicate = p
            case "reorder": guard let p = probability() else { return .failure(FaultPlanError(item: String(item))) }; plan.reorder = p
            case "corrupt": guard let p = probability() else { return .failure(FaultPlanError(item: String(item))) }; plan.corrupt = p
            case "delay": guard let d = interval() else { return .failure(FaultPlanError(item: String(item))) }; plan.delay = d
            case "reorder-delay": guard let d = interval() else { return .failure(FaultPlanError(item: String(item))) }; plan.reorderDelay = d
            case "seed": guard let s = UInt64(value) else { return .failure(FaultPlanError(item: String(item))) }; plan.seed = s
            case "dir":
                switch value {
                case "in": plan.outbound = false
                case "out": plan.inbound = false
                case "both": break
                default: return .failure(FaultPlanError(item: String(item)))
                }
            default: return .failure(FaultPlanError(item: String(item)))
            }
        }
        return .success(plan)
    }
}

public struct FaultPlanError: Error, Equatable, CustomStringConvertible {
    public var item: String
    public var description: String {
        "bad fault '\(item)': use drop=P, dup=P, reorder=P, corrupt=P (0...1), delay=Nms, reorder-delay=Nms, seed=N, dir=in|out|both"
    }
}

/// Applies a FaultPlan to the frames of one queue. Frames it holds back are copied; the
/// owner asks `nextRelease` when to come back and `release` for what is due.
public struct FaultInjector: Sendable {
    public enum Direction: Sendable { case inbound, outbound }
    public let plan: FaultPlan
    var state: UInt64
    var held: [(release: Instant, order: UInt64, direction: Direction, frame: [UInt8])] = []
    var order: UInt64 = 0
    public private(set) var dropped = 0, duplicated = 0, reordered = 0, corrupted = 0

    public init(plan: FaultPlan) { self.plan = plan; state = plan.seed | 1 }

    mutating func random() -> Double {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return Double((state &* 2_685_821_657_736_338_717) >> 11) / Double(1 << 53)
    }

    /// What happens to one frame, drawn before the frame is looked at: a super-frame draws
    /// one fate per wire segment it will become, and goes whole if none is touched.
    public struct Fate: Sendable {
        /// One copy of the frame: where to flip a byte (a fraction of the frame past its
        /// Ethernet header), and whether it is held back to be overtaken.
        struct Copy: Sendable { var corruptAt: Double? = nil, reordered = false }
        public var dropped = false
        /// 1, or 2 when duplicated (two stored copies: drawn per wire segment, never allocated).
        var copyCount = 1
        var first = Copy(), second = Copy()
        var delayed = false
        /// Nothing happens: the frame passes as it is, now.
        public var untouched: Bool {
            !dropped && !delayed && copyCount == 1 && first.corruptAt == nil && !first.reordered
        }
        /// The frame passes as it is, now, and a second copy after it.
        public var plainDuplicate: Bool {
            !dropped && !delayed && copyCount == 2 && first.corruptAt == nil && !first.reordered
                && second.corruptAt == nil && !second.reordered
        }
        static let passes = Fate()
    }

    /// Draws a frame's fate (the draws of the original per-frame injector, in its order,
    /// so a seed gives the same faults on a link without segmentation).
    public mutating func fate(_ direction: Direction) -> Fate {
        let applies = direction == .inbound ? plan.inbound : plan.outbound
        guard applies else { return .passes }
        if random() < plan.drop { return Fate(dropped: true) }
        var fate = Fate(copyCount: random() < plan.duplicate ? 2 : 1, delayed: plan.delay.nanoseconds > 0)
        for index in 0..<fate.copyCount {
            var copy = Fate.Copy()
            if random() < plan.corrupt { copy.corruptAt = random() }
            copy.reordered = random() < plan.reorder
            if index == 0 { fate.first = copy } else { fate.second = copy }
        }
        return fate
    }

    /// Decides a frame's fate. Returns the frames to pass on now (0, 1 or 2; possibly
    /// corrupted copies); delayed ones come back from `release`.
    public mutating func admit(_ frame: UnsafeRawBufferPointer, _ direction: Direction, now: Instant) -> [[UInt8]] {
        apply(fate(direction), to: frame, direction, now: now)
    }

    /// Counts a plain duplicate its owner sent itself (a super-frame's segment, sent again
    /// after the super-frame went whole).
    public mutating func countDuplicate() { duplicated += 1 }

    /// Carries out a drawn fate on `frame` and counts it.
    public mutating func apply(_ fate: Fate, to frame: UnsafeRawBufferPointer, _ direction: Direction, now: Instant) -> [[UInt8]] {
        if fate.dropped { dropped += 1; return [] }
        if fate.copyCount > 1 { duplicated += 1 }
        var out: [[UInt8]] = []
        for copy in [fate.first, fate.second].prefix(fate.copyCount) {
            var bytes = Array(frame)
            if let at = copy.corruptAt, bytes.count > 14 {
                bytes[min(14 + Int(at * Double(bytes.count - 14)), bytes.count - 1)] ^= 0x20
                corrupted += 1
            }
            var wait = plan.delay
            if copy.reordered { wait = wait + plan.reorderDelay; reordered += 1 }
            if wait.nanoseconds == 0 { out.append(bytes); continue }
            order += 1
            held.append((now + wait, order, direction, bytes))
        }
        return out
    }

    public var nextRelease: Instant? { held.map(\.release).min() }

    /// Frames whose delay is over, oldest first.
    public mutating func release(now: Instant) -> [(direction: Direction, frame: [UInt8])] {
        guard held.contains(where: { $0.release <= now }) else { return [] }
        let due = held.filter { $0.release <= now }.sorted { ($0.release, $0.order) < ($1.release, $1.order) }
        held.removeAll { $0.release <= now }
        return due.map { ($0.direction, $0.frame) }
    }
}
