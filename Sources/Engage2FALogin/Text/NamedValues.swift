/// Values by name (a device id, a user name), in the order they were added: a login holds a handful, so
/// a list. Names compare as bytes: a Dictionary<String, …> would hash with a per-process random seed (two
/// getrandom(2) calls in every sshd connection) and String's hashing and `==` compare canonical
/// equivalence, which links Unicode's normalisation tables into the module; the user database
/// compares names as bytes too.
public struct NamedValues<Value: Equatable & Sendable>: Equatable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: Value)
    var entries: [Element] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, Value)...) {
        for (name, value) in elements { self[name] = value }
    }

    public subscript(name: String) -> Value? {
        get { entries.first { $0.key.hasSameBytes(as: name) }?.value }
        set {
            let index = entries.firstIndex { $0.key.hasSameBytes(as: name) }
            switch (index, newValue) {
            case (let index?, let value?): entries[index].value = value
            case (let index?, nil): entries.remove(at: index)
            case (nil, let value?): entries.append((name, value))
            case (nil, nil): break
            }
        }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public var keys: [String] { entries.map { $0.key } }
    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    public func filter(_ isIncluded: (String, Value) -> Bool) -> NamedValues {
        var kept = NamedValues()
        kept.entries = entries.filter { isIncluded($0.key, $0.value) }
        return kept
    }

    /// In the order of the names' bytes.
    func sortedByName() -> [Element] {
        entries.count < 2 ? entries : entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    /// The same names with the same values, in any order.
    public static func == (lhs: NamedValues, rhs: NamedValues) -> Bool {
        lhs.count == rhs.count && lhs.entries.allSatisfy { rhs[$0.key] == $0.value }
    }
}
