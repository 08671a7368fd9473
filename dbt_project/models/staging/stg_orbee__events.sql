{#- Orbee /collect events from landing.events, renamed and cast. -#}
{{ stage_landing_events('orbee') }}
