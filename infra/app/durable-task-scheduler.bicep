// Durable Task Scheduler (the managed Durable backend) and its task hub, used only when the deployment
// chooses durableBackend = 'DurableTaskScheduler'. It accepts managed identities only, no keys.

@description('Name of the scheduler.')
param name string

@description('Azure region of the scheduler.')
param location string

@description('Tags applied to the scheduler.')
param tags object = {}

@description('Task hub name; must equal extensions.durableTask.hubName in host.json.')
param taskHubName string

@description('Principal (object) id of the function app\'s managed identity.')
param principalId string

@description('Scheduler SKU.')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
    }
    // An empty allow-list denies every caller; access is still gated by Entra ID and RBAC.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

// Durable Task Data Contributor: the app starts, runs and queries orchestrations in this scheduler.
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource durableTaskDataAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, principalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = scheduler.id
output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
