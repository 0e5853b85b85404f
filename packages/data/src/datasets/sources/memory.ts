import type { Address, BadRecord, ShardSource, SourceRecord } from "../types.js";

/**
 * Shards held in memory: for tests, and for data built on the fly. An item for
 * which `isBad` returns a reason is reported as a bad record with that reason.
 */
export function memorySource<T>(
  name: string,
  shards: readonly (readonly T[])[],
  options: {
    isBad?: (item: T, shard: number, row: number) => Omit<BadRecord, "id"> | null;
    idOf?: (item: T, shard: number, row: number) => string;
  } = {},
): ShardSource<T> {
  const idOf = options.idOf ?? ((_: T, s: number, r: number) => `${name}/${s}#${r}`);
  const record = (shard: number, row: number): SourceRecord<T> => {
    const item = shards[shard][row];
    const address: Address = { row };
    const next: Address = { row: row + 1 };
    const bad = options.isBad?.(item, shard, row);
    return bad
      ? { address, next, bad: { id: idOf(item, shard, row), ...bad } }
      : { address, next, value: item };
  };
  return {
    name,
    shards: shards.map((_, i) => `${name}-${i}`),
    async *read(shard, from) {
      for (let row = from?.row ?? 0; row < shards[shard].length; row++) yield record(shard, row);
    },
    async fetch(shard, addresses) {
      return addresses.map((a) => record(shard, a.row));
    },
  };
}
