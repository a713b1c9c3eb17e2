import type { Matcher, MatcherOp, SilenceInput } from '../api/types'
import { parseDurationInput } from './alertRules'

export const MATCHER_OPS: MatcherOp[] = ['=', '!=', '=~', '!~']

export interface SilenceForm {
  matchers: Matcher[]
  /** datetime-local value; empty = now. */
  startsAt: string
  /** How long from the start: "2h", "30m"... */
  duration: string
  comment: string
  createdBy: string
}

export type SilenceField = 'matchers' | 'starts_at' | 'ends_at' | 'duration' | 'comment' | 'created_by'
export type SilenceErrors = Partial<Record<SilenceField | 'general', string>>
export const SILENCE_FIELDS: readonly SilenceField[] = ['matchers', 'starts_at', 'ends_at', 'duration', 'comment', 'created_by']

export function emptySilenceForm(matchers: Matcher[] = []): SilenceForm {
  return { matchers: matchers.length ? matchers : [{ name: 'service', op: '=', value: '' }], startsAt: '', duration: '2h', comment: '', createdBy: '' }
}

/** Unix seconds of a datetime-local value (viewer's time zone); null if invalid. */
export function localInputToUnix(value: string): number | null {
  const t = new Date(value).getTime()
  return Number.isFinite(t) ? t / 1000 : null
}

/** A datetime-local value (viewer's time zone) for Unix seconds. */
export function unixToLocalInput(ts: number): string {
  const d = new Date(ts * 1000)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
}

export function validateSilenceForm(f: SilenceForm): SilenceErrors {
  const e: SilenceErrors = {}
  const used = f.matchers.filter((m) => m.name.trim() || m.value.trim())
  if (!used.length) e.matchers = 'Add at least one matcher'
  for (const m of used) {
    if (!m.name.trim()) e.matchers = 'Every matcher needs a label name'
    else if (m.op === '=' && !m.value) e.matchers = `Give "${m.name.trim()}" a value`
    else if (m.op === '=~' || m.op === '!~') {
      try {
        new RegExp(m.value)
      } catch {
        e.matchers = `"${m.value}" is not a regular expression`
      }
    }
  }
  if (f.startsAt && localInputToUnix(f.startsAt) === null) e.starts_at = 'Not a date and time'
  const d = parseDurationInput(f.duration)
  if (d === null || d <= 0) e.duration = 'A duration such as 30m, 2h or 1d'
  return e
}

export function formToSilenceInput(f: SilenceForm, now: number = Date.now() / 1000): SilenceInput {
  const start = f.startsAt ? localInputToUnix(f.startsAt)! : null
  const duration = parseDurationInput(f.duration) ?? 0
  return {
    matchers: f.matchers.filter((m) => m.name.trim() || m.value.trim()).map((m) => ({ name: m.name.trim(), op: m.op, value: m.value })),
    starts_at: start ?? 'now',
    ends_at: (start ?? now) + duration,
    comment: f.comment,
    created_by: f.createdBy,
  }
}
