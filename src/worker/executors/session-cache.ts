/**
 * The most recently used runtime sessions of a job process, so a job on a
 * model the process just ran skips session creation (about 46 ms for the tiny
 * MLP here, far more for a real model). Models are content-addressed files
 * that never change under their name, so the path is a safe key.
 *
 *   const sessions = new SessionCache<Ort.InferenceSession>(2);
 *   const lease = await sessions.acquire(`${modelPath}\0${threads}`, () => ort.InferenceSession.create(modelPath, …));
 *   try { await lease.session.run(feeds); } finally { lease.release(); }
 *
 * An evicted session is released once nobody uses it; a creation that fails
 * is not cached. With `releaseFirst`, a new session is created only after the
 * ones it displaces are released: an LLM's weights are gigabytes, and two
 * models held at once for the length of a load can be more than the machine
 * has.
 */

export interface Releasable {
  release(): Promise<void>;
}

export interface SessionLease<S> {
  session: S;
  /** Done with it for this job; call once. */
  release(): void;
}

interface Entry<S> {
  session: Promise<S>;
  users: number;
  evicted: boolean;
}

export class SessionCache<S extends Releasable> {
  /** In use order: the first is the least recently used. */
  private readonly entries = new Map<string, Entry<S>>();

  constructor(
    private readonly capacity: number,
    private readonly options: { releaseFirst?: boolean } = {},
  ) {}

  async acquire(key: string, create: () => Promise<S>): Promise<SessionLease<S>> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      const room = this.options.releaseFirst ? this.makeRoom() : Promise.resolve();
      entry = { session: room.then(create), users: 0, evicted: false };
      const created = entry;
      created.session.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    this.entries.set(key, entry);
    entry.users += 1;
    this.evictBeyondCapacity();
    const held = entry;
    let session: S;
    try {
      session = await held.session;
    } catch (e) {
      held.users -= 1;
      throw e;
    }
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.evicted && held.users === 0) void dispose(held);
      },
    };
  }

  /** Evicts the least recently used sessions until one more fits; resolves once those nobody uses are released. */
  private makeRoom(): Promise<void> {
    const released: Promise<void>[] = [];
    for (const [key, entry] of this.entries) {
      if (this.entries.size < this.capacity) break;
      released.push(this.evict(key, entry));
    }
    return Promise.all(released).then(() => undefined);
  }

  private evictBeyondCapacity(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      void this.evict(key, entry);
    }
  }

  /** Resolves once the session is released, at once if it is in use (its last user releases it). */
  private evict(key: string, entry: Entry<S>): Promise<void> {
    this.entries.delete(key);
    entry.evicted = true;
    return entry.users === 0 ? dispose(entry) : Promise.resolve();
  }
}

function dispose<S extends Releasable>(entry: Entry<S>): Promise<void> {
  // A session that never came to be has nothing to release; releasing is best effort.
  return entry.session.then((s) => s.release()).catch(() => undefined);
}
