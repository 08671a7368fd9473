{#- SuprSend track_event and bulk events from landing.events, renamed and cast. -#}
{{ stage_landing_events('suprsend') }}
