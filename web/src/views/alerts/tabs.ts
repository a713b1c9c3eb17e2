import type { Component } from 'vue'
import AlertsTab from './AlertsTab.vue'
import DeliveriesTab from './DeliveriesTab.vue'
import RulesTab from './RulesTab.vue'
import SilencesTab from './SilencesTab.vue'

/** Tabs of the Alerts page (selected with ?tab=<id>; the first one is the default). */
export interface AlertTab {
  id: string
  label: string
  component: Component
  props?: Record<string, unknown>
}

export const ALERT_TABS: AlertTab[] = [
  { id: 'alerts', label: 'Alerts', component: AlertsTab },
  { id: 'rules', label: 'Rules', component: RulesTab },
  { id: 'silences', label: 'Silences', component: SilencesTab },
  { id: 'deliveries', label: 'Delivery log', component: DeliveriesTab },
]
