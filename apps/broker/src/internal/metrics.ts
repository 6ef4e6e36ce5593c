/**
 * A small Prometheus registry: counters, gauges (sampled at scrape time) and histograms with
 * labels, rendered in the text exposition format 0.0.4. Hot-path updates are a map lookup and a
 * few additions; nothing is allocated per observation once a label set exists.
 */

type Labels = Readonly<Record<string, string>>

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const labelKey = (labels: Labels): string => {
  const keys = Object.keys(labels).sort()
  return keys.map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`).join(",")
}

const withLabels = (name: string, key: string, extra?: string): string => {
  const all = [key, extra].filter((s) => s !== undefined && s.length > 0).join(",")
  return all.length > 0 ? `${name}{${all}}` : name
}

const num = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : "-Inf")

export interface Counter {
  readonly inc: (labels?: Labels, by?: number) => void
}

export interface Histogram {
  readonly observe: (labels: Labels, value: number) => void
}

interface Family {
  readonly name: string
  readonly help: string
  readonly type: "counter" | "gauge" | "histogram"
  readonly render: () => Promise<ReadonlyArray<string>> | ReadonlyArray<string>
}

export interface Registry {
  readonly counter: (name: string, help: string) => Counter
  readonly histogram: (name: string, help: string, buckets: ReadonlyArray<number>) => Histogram
  /** A gauge whose samples are produced at scrape time (e.g. sessions by state). */
  readonly gauge: (
    name: string,
    help: string,
    sample: () => Promise<ReadonlyArray<readonly [Labels, number]>>
  ) => void
  readonly render: () => Promise<string>
}

export const makeRegistry = (): Registry => {
  const families: Array<Family> = []

  const counter = (name: string, help: string): Counter => {
    const values = new Map<string, number>()
    families.push({
      name,
      help,
      type: "counter",
      render: () => [...values].map(([k, v]) => `${withLabels(name, k)} ${num(v)}`)
    })
    return {
      inc: (labels = {}, by = 1) => {
        const k = labelKey(labels)
        values.set(k, (values.get(k) ?? 0) + by)
      }
    }
  }

  const histogram = (name: string, help: string, buckets: ReadonlyArray<number>): Histogram => {
    const bounds = [...buckets].sort((a, b) => a - b)
    const series = new Map<string, { counts: Array<number>; sum: number; count: number }>()
    families.push({
      name,
      help,
      type: "histogram",
      render: () => {
        const out: Array<string> = []
        for (const [k, s] of series) {
          let cumulative = 0
          bounds.forEach((b, i) => {
            cumulative += s.counts[i] ?? 0
            out.push(`${withLabels(`${name}_bucket`, k, `le="${num(b)}"`)} ${cumulative}`)
          })
          out.push(`${withLabels(`${name}_bucket`, k, 'le="+Inf"')} ${s.count}`)
          out.push(`${withLabels(`${name}_sum`, k)} ${num(s.sum)}`)
          out.push(`${withLabels(`${name}_count`, k)} ${s.count}`)
        }
        return out
      }
    })
    return {
      observe: (labels, value) => {
        const k = labelKey(labels)
        let s = series.get(k)
        if (s === undefined) {
          s = { counts: bounds.map(() => 0), sum: 0, count: 0 }
          series.set(k, s)
        }
        const i = bounds.findIndex((b) => value <= b)
        if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1
        s.sum += value
        s.count += 1
      }
    }
  }

  const gauge: Registry["gauge"] = (name, help, sample) => {
    families.push({
      name,
      help,
      type: "gauge",
      render: async () => {
        const rows = await sample()
        return rows.map(([labels, v]) => `${withLabels(name, labelKey(labels))} ${num(v)}`)
      }
    })
  }

  const render = async (): Promise<string> => {
    const out: Array<string> = []
    for (const f of families) {
      const lines = await f.render()
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...lines)
    }
    return out.join("\n") + "\n"
  }

  return { counter, histogram, gauge, render }
}

/** Latency buckets in seconds, from 0.5 ms to 10 s. */
export const latencyBuckets: ReadonlyArray<number> = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
]
