import { Tracer } from "effect"

/** A tracer that keeps every span it makes, and a summary of them. */
export const make = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const summary = () =>
    spans.map((span) => ({
      name: span.name,
      attributes: Object.fromEntries(span.attributes),
      ended: span.status._tag === "Ended"
    }))
  return { tracer, spans, summary }
}
