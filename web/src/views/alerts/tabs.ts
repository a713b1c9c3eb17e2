import type { Component } from 'vue'
import AlertsTab from './AlertsTab.vue'
import NotConfiguredTab from './NotConfiguredTab.vue'

/**
 * Tabs of the Alerts page. To add rule management, silences or delivery logs,
 * replace the placeholder component of that tab (or append a new entry).
 */
export interface AlertTab {
  id: string
  label: string
  component: Component
  props?: Record<string, unknown>
}

export const ALERT_TABS: AlertTab[] = [
  { id: 'alerts', label: 'Alerts', component: AlertsTab },
  {
    id: 'rules',
    label: 'Rules',
    component: NotConfiguredTab,
    props: { what: 'Alert rules', detail: 'Rules (thresholds on latency, error rate, throughput and anomalies) will be managed here.' },
  },
  {
    id: 'silences',
    label: 'Silences',
    component: NotConfiguredTab,
    props: { what: 'Silences', detail: 'Silences mute notifications for matching alerts for a while.' },
  },
  {
    id: 'deliveries',
    label: 'Delivery log',
    component: NotConfiguredTab,
    props: { what: 'Delivery log', detail: 'Every notification sent (e-mail, webhook, Slack) and its outcome will be listed here.' },
  },
]
