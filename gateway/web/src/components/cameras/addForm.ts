// The add-camera form, filled by hand or from a found ONVIF device or GB/T 28181 channel.
import type { GbChannel, GbDevice, NewCamera, OnvifDevice, OnvifProbe } from '../../types/cameras'

export interface AddForm {
  id: string
  name: string
  location: string
  url: string
  sub_url: string
  transport: string
  source: string
  quality: string
}

export const emptyForm = (): AddForm => ({
  id: '',
  name: '',
  location: '',
  url: '',
  sub_url: '',
  transport: 'tcp',
  source: '',
  quality: '',
})

export const ID_RULE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

export function toNewCamera(form: AddForm): NewCamera {
  return {
    id: form.id,
    name: form.name.trim(),
    location: form.location.trim(),
    url: form.url.trim(),
    sub_url: form.sub_url.trim() || null,
    transport: form.transport,
    source: form.source || null,
    quality: form.quality || null,
    scenes: [],
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48)
}

export const onvifHost = (d: OnvifDevice): string => d.host ?? d.source ?? ''

/** The form for a found ONVIF device: with a probe answer its stream addresses, else name and host. */
export function fromOnvif(d: OnvifDevice, probe: OnvifProbe | null): AddForm {
  const host = onvifHost(d)
  const name = d.name ?? probe?.camera?.name ?? d.hardware ?? host
  return {
    id: slug(name) || 'onvif-camera',
    name,
    location: d.location ?? '',
    url: probe?.camera?.url ?? (host ? `rtsp://${host}:554/` : ''),
    sub_url: probe?.camera?.sub_url ?? '',
    transport: 'tcp',
    source: '',
    quality: probe?.camera?.quality ?? '',
  }
}

export const channelsOf = (d: GbDevice): GbChannel[] => d.channels ?? d.catalog ?? []

/** The form for a GB/T 28181 channel: the gateway pulls it by gb28181://device/channel. */
export function fromGbChannel(d: GbDevice, ch: GbChannel): AddForm {
  const device = d.id ?? d.device_id ?? ''
  const channel = ch.id ?? ch.channel_id ?? ''
  return {
    id: channel,
    name: ch.name ?? channel,
    location: ch.address ?? '',
    url: `gb28181://${device}/${channel}`,
    sub_url: '',
    transport: 'udp',
    source: device,
    quality: '',
  }
}
