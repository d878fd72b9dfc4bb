/**
 * A function of one string remembered for the keys asked lately: at most
 * `limit` answers are kept, all dropped at once when full (hot keys come back
 * at once; no bookkeeping per call as a least-recently-used list would need).
 */
export function remembered<V>(limit: number, make: (key: string) => V): (key: string) => V {
  const kept = new Map<string, V>();
  return (key) => {
    let value = kept.get(key);
    if (value === undefined && !kept.has(key)) {
      if (kept.size >= limit) kept.clear();
      value = make(key);
      kept.set(key, value);
    }
    return value as V;
  };
}
