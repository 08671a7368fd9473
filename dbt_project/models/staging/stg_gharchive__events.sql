{#- GH Archive events (declarative mapping mappings/gharchive.yml) from landing.events, renamed and cast. -#}
{{ stage_landing_events('gharchive') }}
