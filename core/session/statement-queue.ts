/**
 * One statement at a time on a session. A session has one host connection, and a model
 * statement spans several of its queries (the catalog look-up, the stage's read, the
 * statement around the call); a second statement run on the same connection meanwhile would
 * land between them, and on DuckDB it would silently cut the stage's streaming read short
 * (a connection keeps one streaming result; running another query ends it with no error).
 * So calls made while a statement runs wait for it in the order they were made, as
 * node-postgres's client queues its queries. A statement whose caller holds it open (a
 * stream being read) can offer to give way (`whileHeld`): the first call that waits asks it to.
 */
export class StatementQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private giveWay: (() => void) | undefined;

  /** Waits for the statements queued before this call; resolves to the function that lets the next one run. */
  async enter(): Promise<() => void> {
    let leave!: () => void;
    const done = new Promise<void>((resolve) => (leave = resolve));
    const before = this.tail;
    this.tail = before.then(() => done);
    this.waiting++;
    this.askToGiveWay();
    try {
      await before;
    } finally {
      this.waiting--;
    }
    return leave;
  }

  /**
   * While the statement holding the queue can give way: `ask` is called once, at once if a
   * call waits already, else when one comes; the statement then leaves as usual. Returns
   * the function that withdraws the offer.
   */
  whileHeld(ask: () => void): () => void {
    this.giveWay = ask;
    this.askToGiveWay();
    return () => {
      if (this.giveWay === ask) this.giveWay = undefined;
    };
  }

  private askToGiveWay(): void {
    const ask = this.giveWay;
    if (this.waiting === 0 || !ask) return;
    this.giveWay = undefined;
    ask();
  }

  /** Runs `step` when the statements queued before it are done. */
  async run<T>(step: () => Promise<T>): Promise<T> {
    const leave = await this.enter();
    try {
      return await step();
    } finally {
      leave();
    }
  }
}
