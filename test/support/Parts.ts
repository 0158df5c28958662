/** One part of a tree-like watch message: an entity's name and its state (a number that grows with each change). */
export interface Part {
  readonly name: string
  readonly state: number
}

export const parts = (...list: ReadonlyArray<readonly [string, number]>): ReadonlyArray<Part> =>
  list.map(([name, state]) => ({ name, state }))
