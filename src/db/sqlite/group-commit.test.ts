import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit, type Settled } from './group-commit.js';

/** A runner that records its groups and answers each item n with n * 10, refusing negative items. */
function recordingRunner(groups: number[][]) {
  return async (items: readonly number[]): Promise<Settled<number>[]> => {
    groups.push([...items]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return items.map((n) => (n < 0 ? { ok: false, error: new Error(`refused ${n}`) } : { ok: true, value: n * 10 }));
  };
}

test('items submitted in one turn of the event loop form one group, each answered on its own', async () => {
  const groups: number[][] = [];
  const gc = new GroupCommit(recordingRunner(groups));
  const outcomes = await Promise.allSettled([gc.submit(1), gc.submit(-2), gc.submit(3)]);
  assert.deepEqual(groups, [[1, -2, 3]]);
  assert.equal(gc.groups, 1);
  assert.deepEqual(outcomes[0], { status: 'fulfilled', value: 10 });
  assert.equal(outcomes[1]!.status, 'rejected');
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /refused -2/);
  assert.deepEqual(outcomes[2], { status: 'fulfilled', value: 30 });
});

test('items that arrive while a group runs wait for the next group', async () => {
  const groups: number[][] = [];
  const gc = new GroupCommit(recordingRunner(groups));
  const first = gc.submit(1);
  await new Promise((resolve) => setImmediate(resolve));
  // The first group is running now (its runner waits 5 ms).
  const later = [gc.submit(2), gc.submit(3)];
  assert.deepEqual(await Promise.all([first, ...later]), [10, 20, 30]);
  assert.deepEqual(groups, [[1], [2, 3]]);
});

test('a runner that throws fails every item of its group, and the next group still runs', async () => {
  let calls = 0;
  const gc = new GroupCommit<number, number>(async (items) => {
    calls++;
    if (calls === 1) throw new Error('commit failed');
    return items.map((n) => ({ ok: true as const, value: n }));
  });
  const failed = await Promise.allSettled([gc.submit(1), gc.submit(2)]);
  assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected']);
  assert.match(String((failed[0] as PromiseRejectedResult).reason), /commit failed/);
  assert.equal(await gc.submit(3), 3);
});

test('groups are at most maxGroup items, in submission order', async () => {
  const groups: number[][] = [];
  const gc = new GroupCommit(recordingRunner(groups), 2);
  assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map((n) => gc.submit(n))), [10, 20, 30, 40, 50]);
  assert.deepEqual(groups, [[1, 2], [3, 4], [5]]);
});

test('idle() resolves once every submitted item is answered', async () => {
  const groups: number[][] = [];
  const gc = new GroupCommit(recordingRunner(groups));
  let answered = 0;
  for (const n of [1, 2, 3]) void gc.submit(n).then(() => answered++);
  await gc.idle();
  // The answers' own callbacks run after idle's; give them one turn.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(answered, 3);
  await gc.idle(); // nothing queued: returns at once
});
