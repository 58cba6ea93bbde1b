/// Values by name (a device id, a user name), in the order they were added: a login holds a handful, so
/// a list. Names compare as bytes: a Dictionary<String, …> would hash with a per-process random seed (two
/// getrandom(2) calls in every sshd connection) and String's hashing and `==` compare canonical
/// equivalence, which links Unicode's normalisation tables into the module; the user database
/// compares names as bytes too.
///
/// The names are kept apart from the values so that finding and ordering names is one non-generic
/// function (`indexOfName`, `orderOfNames`), not a copy per value type.
public struct NamedValues<Value: Equatable & Sendable>: Equatable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: Value)
    private(set) var names: [String] = []
    private(set) var values: [Value] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, Value)...) {
        for (name, value) in elements { self[name] = value }
    }

    public subscript(name: String) -> Value? {
        get { indexOfName(name, in: names).map { values[$0] } }
        set {
            let index = indexOfName(name, in: names)
            if let index {
                if let newValue { values[index] = newValue } else {
                    names.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                names.append(name)
                values.append(newValue)
            }
        }
    }

    public var count: Int { names.count }
    public var isEmpty: Bool { names.isEmpty }
    public var keys: [String] { names }

    public struct Iterator: IteratorProtocol {
        let names: [String]
        let values: [Value]
        var index = 0

        public mutating func next() -> Element? {
            guard index < names.count else { return nil }
            defer { index += 1 }
            return (names[index], values[index])
        }
    }

    public func makeIterator() -> Iterator { Iterator(names: names, values: values) }

    public func filter(_ isIncluded: (String, Value) -> Bool) -> NamedValues {
        var kept = NamedValues()
        for index in names.indices where isIncluded(names[index], values[index]) {
            kept.names.append(names[index])
            kept.values.append(values[index])
        }
        return kept
    }

    /// The entries in the order `areInOrder` (of two positions) gives, ties in the order of the names' bytes.
    func sorted(by areInOrder: ((Int, Int) -> Bool)?) -> NamedValues {
        var sorted = NamedValues()
        for index in orderOfNames(names, by: areInOrder) {
            sorted.names.append(names[index])
            sorted.values.append(values[index])
        }
        return sorted
    }

    /// In the order of the names' bytes.
    func sortedByName() -> NamedValues { names.count < 2 ? self : sorted(by: nil) }

    /// The first `count` entries.
    func prefix(_ count: Int) -> NamedValues {
        var kept = self
        if kept.names.count > count {
            kept.names.removeLast(kept.names.count - count)
            kept.values.removeLast(kept.values.count - count)
        }
        return kept
    }

    /// The same names with the same values, in any order.
    public static func == (lhs: NamedValues, rhs: NamedValues) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in lhs.names.indices where rhs[lhs.names[index]] != lhs.values[index] { return false }
        return true
    }
}

/// The position of `name` among `names`, compared as bytes.
func indexOfName(_ name: String, in names: [String]) -> Int? {
    for index in names.indices where names[index].hasSameBytes(as: name) { return index }
    return nil
}

/// The positions of `names` ordered by `areInOrder` (if given), then (for ties) by the names' bytes: an insertion
/// sort, which is deterministic and small, for the few dozen entries a state file holds at most
/// (`UserState.keptDeviceUsages`, bounded by the file's size and record count).
/// The comparator is optional so that the optimiser keeps one copy of this function, not one per closure.
func orderOfNames(_ names: [String], by areInOrder: ((Int, Int) -> Bool)?) -> [Int] {
    func precedes(_ left: Int, _ right: Int) -> Bool {
        if let areInOrder {
            if areInOrder(left, right) { return true }
            if areInOrder(right, left) { return false }
        }
        return names[left].utf8.lexicographicallyPrecedes(names[right].utf8)
    }
    var order: [Int] = []
    order.reserveCapacity(names.count)
    for index in names.indices {
        var position = order.count
        while position > 0 && precedes(index, order[position - 1]) { position -= 1 }
        order.insert(index, at: position)
    }
    return order
}
